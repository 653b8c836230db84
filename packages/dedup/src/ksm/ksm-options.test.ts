import { HypervisorError } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { checkKnob, DEFAULT_KSM_OPTIONS, isKsmKnob, KSM_KNOBS, knobText, resolveKsmOptions } from './ksm-options.js';

describe('KSM options', () => {
  it("has Linux's defaults (run 1: a chosen KSM scans)", () => {
    expect(DEFAULT_KSM_OPTIONS).toEqual({
      pages_to_scan: 100,
      sleep_millisecs: 20,
      max_page_sharing: 256,
      use_zero_pages: 0,
      merge_across_nodes: 1,
      smart_scan: 1,
      run: 1,
      stable_node_chains_prune_millisecs: 2000,
      advisor_max_cpu: 70,
      advisor_min_pages_to_scan: 500,
      advisor_max_pages_to_scan: 30000,
      advisor_target_scan_time: 200,
      advisor_mode: 0,
    });
    expect(KSM_KNOBS).toEqual(Object.keys(DEFAULT_KSM_OPTIONS));
    expect(isKsmKnob('run')).toBe(true);
    expect(isKsmKnob('toString')).toBe(false);
  });

  it.each([
    ['max_page_sharing', 1],
    ['max_page_sharing', 2 ** 31],
    ['run', 3],
    ['run', -1],
    ['use_zero_pages', 2],
    ['merge_across_nodes', 0.5],
    ['smart_scan', Number.NaN],
    ['pages_to_scan', -1],
    ['pages_to_scan', 2 ** 32],
    ['sleep_millisecs', 1.5],
    ['stable_node_chains_prune_millisecs', -5],
  ] as const)('refuses %s = %s with EINVAL naming the knob', (name, value) => {
    expect(() => checkKnob('op', name, value)).toThrow(HypervisorError);
    expect(() => checkKnob('op', name, value)).toThrow(new RegExp(`EINVAL: ${name} must be an integer in`));
    expect(() => resolveKsmOptions({ [name]: value })).toThrow(new RegExp(`^ksm: EINVAL: ${name}`));
  });

  it('takes true/false for the 0/1 knobs only', () => {
    expect(checkKnob('op', 'use_zero_pages', true)).toBe(1);
    expect(checkKnob('op', 'smart_scan', false)).toBe(0);
    expect(() => checkKnob('op', 'pages_to_scan', true)).toThrow(/pages_to_scan must be an integer/);
    expect(() => checkKnob('op', 'run', true)).toThrow(/run must be an integer/);
  });

  it('accepts the edges of each range, and refuses unknown knobs', () => {
    expect(checkKnob('op', 'max_page_sharing', 2)).toBe(2);
    expect(checkKnob('op', 'pages_to_scan', 0)).toBe(0);
    expect(checkKnob('op', 'run', 2)).toBe(2);
    expect(() => checkKnob('op', 'pages_to_sleep', 1)).toThrow(/EINVAL: unknown KSM knob "pages_to_sleep"/);
    expect(() => resolveKsmOptions({ nope: 1 } as never)).toThrow(/unknown KSM knob "nope"/);
    expect(resolveKsmOptions({ run: 0, max_page_sharing: 3 })).toMatchObject({ run: 0, max_page_sharing: 3, pages_to_scan: 100 });
  });

  it('takes advisor_mode as sysfs words or 0/1, and gives pages_to_scan to the advisor', () => {
    expect(checkKnob('t', 'advisor_mode', 'scan-time')).toBe(1);
    expect(checkKnob('t', 'advisor_mode', 'none')).toBe(0);
    expect(() => checkKnob('t', 'advisor_mode', 'auto')).toThrow(/advisor_mode must be "none" or "scan-time"/);
    expect(() => checkKnob('t', 'advisor_target_scan_time', 0)).toThrow(HypervisorError);
    expect(() => checkKnob('t', 'pages_to_scan', 'many')).toThrow(/pages_to_scan must be an integer/);
    // Switched on, the advisor starts from advisor_min_pages_to_scan; pages_to_scan is its own.
    expect(resolveKsmOptions({ advisor_mode: 'scan-time', advisor_min_pages_to_scan: 64 })).toMatchObject({ advisor_mode: 1, pages_to_scan: 64 });
    expect(() => resolveKsmOptions({ advisor_mode: 1, pages_to_scan: 10 })).toThrow(/pages_to_scan is the advisor's/);
    expect(knobText('advisor_mode', 1)).toBe('scan-time');
    expect(knobText('advisor_mode', 0)).toBe('none');
    expect(knobText('pages_to_scan', 7)).toBe('7');
  });
});
