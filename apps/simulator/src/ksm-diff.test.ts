import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseScenario, type Scenario } from '@pagevisor/workloads';
import { formatKsmDiff, NotReplayable, replayScript } from './ksm-diff.js';

// The replay script and the table, without the kernel (the oracle suite runs them on it).

const load = (name: string): Scenario => parseScenario(JSON.parse(readFileSync(new URL(`../scenarios/${name}`, import.meta.url), 'utf8')));

describe('ksm-diff', () => {
  it("writes a scenario's knobs, guests and steps as the replayer's commands, numbering the steps", () => {
    const s = load('ksm-merge.json');
    const { script, stepOf } = replayScript(s);
    const lines = Buffer.from(script).toString('latin1').split('\n').filter((l) => l !== '');
    expect(lines).toContain('knob pages_to_scan 100');
    expect(lines).toContain('knob run 1');
    expect(lines).toContain('guests 2 256 256');
    expect(lines).toContain('fill 0 0 10 42');
    expect(lines).toContain('madvise 1 0 10 12');
    expect(lines).toContain('set max_page_sharing 2');
    expect(lines).toContain('checkpoint merged');
    expect(lines.at(-1)).toBe('end');
    // Every command but the checkpoints answers one line, which names its step (set-up: -1).
    const firstStep = stepOf.indexOf(0);
    expect(stepOf.slice(0, firstStep).every((n) => n === -1)).toBe(true);
    expect(s.steps![stepOf[firstStep + 4]!]!.op).toBe('wait_full_scans');
  });

  it("numbers a fork's child after the guests it started with, and writes advisor_mode as sysfs's words", () => {
    const fork = Buffer.from(replayScript(load('ksm-fork.json')).script).toString('latin1').split('\n');
    expect(fork).toContain('guests 1 256');
    expect(fork).toContain('fork 0');
    expect(fork).toContain('write 1 0 0 1'); // the child, guest 1
    const advisor = Buffer.from(replayScript(load('ksm-advisor.json')).script).toString('latin1').split('\n');
    // Off first (pages_to_scan cannot be written while it is on), then on, last of the knobs.
    expect(advisor[0]).toBe('knob advisor_mode none');
    expect(advisor.indexOf('knob advisor_mode scan-time')).toBe(advisor.indexOf('knob advisor_target_scan_time 1') + 1);
    expect(advisor).toContain('set advisor_mode none');
  });

  it('touches the booted pages that have a frame of their own, zeros as one memset a run', () => {
    const s = load('ksm-merge.json');
    const page = new Uint8Array(4096).fill(3);
    const text = Buffer.from(replayScript(s, [[{ gfn: 0, page: null }, { gfn: 1, page: null }, { gfn: 2, page }, { gfn: 5, page: null }], []]).script).toString('latin1');
    expect(text).toContain('fill 0 0 2 0\ndata 0 2 1\n');
    expect(text).toContain('fill 0 5 1 0\n');
  });

  it('sends seeded pages and partial writes as raw bytes after their command', () => {
    const s = load('ksm-unmerge-discarded.json');
    const text = Buffer.from(replayScript(s).script).toString('latin1');
    expect(text).toContain('madvise 0 64 64 4\n'); // MADV_DONTNEED
    const seeded = parseScenario({ ...s, steps: [{ op: 'fill', guest: 'vm', gfn: 0, count: 2, seed: 5, distinct: true }, { op: 'write', guest: 'vm', gfn: 1, offset: 7, bytes: [1, 2, 3] }] });
    const raw = Buffer.from(replayScript(seeded).script);
    const at = raw.indexOf('data 0 0 2\n') + 'data 0 0 2\n'.length;
    expect(raw.subarray(at, at + 2 * 4096).some((b) => b !== 0)).toBe(true);
    const w = raw.indexOf('write 0 1 7 3\n') + 'write 0 1 7 3\n'.length;
    expect([...raw.subarray(w, w + 3)]).toEqual([1, 2, 3]);
  });

  it('refuses what it cannot replay, naming why', () => {
    const s = load('ksm-merge.json');
    expect(() => replayScript({ ...s, dedup: { strategy: 'inline' } } as Scenario)).toThrow(NotReplayable);
    const busy = parseScenario({ ...s, guests: [{ ...s.guests[0]!, writeRatePagesPerS: 10 }] });
    expect(() => replayScript(busy)).toThrow(/guest vm: .*writeRatePagesPerS must be 0/);
    const mergeable = parseScenario({ ...s, guests: [{ ...s.guests[0]!, mergeable: true }] });
    expect(() => replayScript(mergeable)).toThrow(/"mergeable": false/);
  });

  it('marks the counters and steps that differ', () => {
    const text = formatKsmDiff({
      scenario: 'x',
      rows: [
        { checkpoint: 'a', scope: 'global', counter: 'pages_shared', pagevisor: 1, kernel: 1 },
        { checkpoint: 'a', scope: 'vm-0', counter: 'profit', pagevisor: 5, kernel: 6 },
      ],
      steps: [{ step: 3, op: 'set', pagevisor: 'ok', kernel: 'EBUSY' }],
      differences: 2,
    });
    expect(text).toContain('(2 differ)');
    expect(text).toMatch(/vm-0\s+profit\s+5\s+6 {2}<- differs/);
    expect(text).not.toMatch(/pages_shared.*differs/);
    expect(text).toContain('step 3 (set): pagevisor ok, kernel EBUSY  <- differs');
  });
});
