import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_SUITES, parseCliArgs, repeatsOf, USAGE, UsageError } from './cli-args.js';
import { main } from './cli.js';
import { suitesToRun } from './run-bench.js';

describe('parseCliArgs', () => {
  it('runs every suite but scale by default, with each suite own repeats', () => {
    const o = parseCliArgs([]);
    expect(o.suites).toEqual(DEFAULT_SUITES);
    expect(o.suites).not.toContain('scale');
    expect(o.suites).not.toContain('huge');
    expect(o).toMatchObject({ json: false, quick: false, help: false });
    expect(o.repeats).toBeUndefined();
    expect(repeatsOf(o, 'micro')).toBe(5);
    expect(repeatsOf(o, 'macro')).toBe(3);
    expect(repeatsOf(o, 'scale')).toBe(1);
    expect(o.suites).toContain('ksmd');
    expect(repeatsOf(o, 'ksmd')).toBe(5);
  });

  it('takes suites repeated or comma-separated, in run order, once each', () => {
    expect(parseCliArgs(['--suite', 'scale', '--suite', 'micro,limits', '--suite', 'micro']).suites).toEqual(['limits', 'micro', 'scale']);
    expect(parseCliArgs(['--suite', 'macro,ksmd']).suites).toEqual(['ksmd', 'macro']);
  });

  it('reads the other options', () => {
    const o = parseCliArgs(['--json', '--quick', '--repeats', '7', '--compare', 'old.json', '--out', 'new.json', '--markdown', 'B.md']);
    expect(o).toMatchObject({ json: true, quick: true, repeats: 7, compare: 'old.json', out: 'new.json', markdown: 'B.md' });
    expect(repeatsOf(o, 'scale')).toBe(7);
    expect(repeatsOf({ quick: true }, 'micro')).toBe(3);
  });

  it('refuses an unknown suite, naming the suites', () => {
    expect(() => parseCliArgs(['--suite', 'nano'])).toThrow(UsageError);
    expect(() => parseCliArgs(['--suite', 'micro,nano'])).toThrow(/unknown suite "nano" \(suites: limits, micro, swap, ksmd, macro, sweep, trace, scale, huge\)/);
  });

  it('refuses unknown options, positionals and bad values', () => {
    expect(() => parseCliArgs(['--fast'])).toThrow(UsageError);
    expect(() => parseCliArgs(['micro'])).toThrow(UsageError);
    expect(() => parseCliArgs(['--suite'])).toThrow(UsageError);
    for (const bad of ['0', '-1', '2.5', 'many', '1001']) expect(() => parseCliArgs(['--repeats', bad])).toThrow(/--repeats/);
    expect(() => parseCliArgs(['--compare', ''])).toThrow(/--compare: needs a file name/);
    expect(() => parseCliArgs(['--markdown', ''])).toThrow(/--markdown: needs a file name/);
  });

  it('takes --strategy repeated, in order, once each', () => {
    expect(parseCliArgs([]).strategies).toEqual([]);
    expect(parseCliArgs(['--strategy', './a.mjs', '--strategy', 'my-dedup', '--strategy', './a.mjs']).strategies).toEqual(['./a.mjs', 'my-dedup']);
    expect(parseCliArgs(['--suite', 'micro,macro', '--strategy', 'ksm']).strategies).toEqual(['ksm']);
  });

  it('refuses --strategy without the macro suite, or empty', () => {
    expect(() => parseCliArgs(['--suite', 'micro', '--strategy', './a.mjs'])).toThrow(
      '--strategy: plugins run in the macro suite, which this run (micro) does not include: add --suite macro',
    );
    expect(() => parseCliArgs(['--strategy', ''])).toThrow(/--strategy: needs a module specifier/);
    expect(() => parseCliArgs(['--strategy'])).toThrow(UsageError);
  });
});

describe('--simulator-root', () => {
  it('takes a directory for the scale suite, limits allowed beside it', () => {
    expect(parseCliArgs(['--suite', 'scale', '--simulator-root', '/work/old565'])).toMatchObject({ suites: ['scale'], simulatorRoot: '/work/old565' });
    expect(parseCliArgs(['--suite', 'limits,scale', '--simulator-root', '../old']).simulatorRoot).toBe('../old');
    expect(parseCliArgs(['--suite', 'scale']).simulatorRoot).toBeUndefined();
  });

  it('refuses it without the scale suite, beside suites that would measure this checkout, or empty', () => {
    expect(() => parseCliArgs(['--simulator-root', '/old'])).toThrow(/--simulator-root: only the scale suite runs another checkout's simulator, and this run \(limits, micro, swap, ksmd, macro, sweep, trace\) does not include it: add --suite scale/);
    expect(() => parseCliArgs(['--suite', 'scale,macro,micro', '--simulator-root', '/old'])).toThrow("--simulator-root: only the scale suite runs another checkout's simulator; micro, macro would measure this one: run them without it");
    expect(() => parseCliArgs(['--suite', 'scale', '--simulator-root', ''])).toThrow(/--simulator-root: needs the directory of a checkout/);
    expect(() => parseCliArgs(['--suite', 'scale', '--simulator-root'])).toThrow(UsageError);
  });
});

describe('suitesToRun', () => {
  it('adds the limits whenever micro or swap runs, as their ratios need them', () => {
    expect(suitesToRun(['micro'])).toEqual(['limits', 'micro']);
    expect(suitesToRun(['swap', 'macro'])).toEqual(['limits', 'swap', 'macro']);
    expect(suitesToRun(['macro', 'trace'])).toEqual(['macro', 'trace']);
  });
});

describe('main', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-cli-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const io = (): { out: string[]; err: string[]; io: { stdout: { write(t: string): void }; stderr: { write(t: string): void } } } => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { stdout: { write: (t) => out.push(t) }, stderr: { write: (t) => err.push(t) } } };
  };

  it('prints the usage and exits 1 on a usage error, running nothing', async () => {
    const t = io();
    expect(await main(['--suite', 'bogus'], t.io)).toBe(1);
    expect(t.err.join('')).toMatch(/^bench: unknown suite "bogus"[\s\S]*Usage: /);
    expect(t.out).toEqual([]);
  });

  it('exits 1 when the --compare file is missing, not JSON, or not a bench result', async () => {
    const notJson = join(dir, 'not.json');
    writeFileSync(notJson, '{ nope');
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ format: 'something-else', measurements: [] }));
    const badEntry = join(dir, 'bad-entry.json');
    writeFileSync(badEntry, JSON.stringify({ format: 'pagevisor-bench/1', measurements: [{ id: 'x', better: 'up', median: 1, min: 1, max: 1, spread: 0 }] }));
    for (const [file, message] of [
      [join(dir, 'missing.json'), /cannot read/],
      [notJson, /is not JSON/],
      [other, /format is "something-else"/],
      [badEntry, /measurements\[0\]\.better/],
    ] as const) {
      const t = io();
      expect(await main(['--suite', 'limits', '--compare', file], t.io)).toBe(1);
      expect(t.err.join('')).toMatch(message);
    }
  });

  it('exits 1 when --simulator-root is no built checkout, running nothing', async () => {
    const t = io();
    expect(await main(['--suite', 'scale', '--simulator-root', join(dir, 'nowhere')], t.io)).toBe(1);
    expect(t.err.join('')).toMatch(/^bench: --simulator-root: .*nowhere is not a checkout of pagevisor \(no apps\/simulator\)/);
    expect(t.out).toEqual([]);
  });

  it('prints the usage on --help and exits 0', async () => {
    const t = io();
    expect(await main(['--help'], t.io)).toBe(0);
    expect(t.out.join('')).toMatch(/^Usage: /);
  });

  it('prints only the usage on --help or -h, whatever else is given: nothing is checked, read, loaded or run', async () => {
    for (const flag of ['--help', '-h']) {
      const t = io();
      const argv = ['--suite', 'nano', '--compare', join(dir, 'missing.json'), '--strategy', './gone.mjs', '--repeats', '0', flag];
      expect(await main(argv, t.io, dir)).toBe(0);
      expect(t.out.join('')).toBe(USAGE);
      expect(t.err).toEqual([]);
    }
    expect(parseCliArgs(['--suite', 'nano', '--help']).help).toBe(true);
  });
});
