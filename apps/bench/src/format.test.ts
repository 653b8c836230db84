import { describe, expect, it } from 'vitest';
import { compareMeasurements } from './compare.js';
import { formatBytes, formatComparison, formatMarkdown, formatResult, formatValue, ratioCell } from './format.js';
import { measurement, withLimit } from './measurement.js';
import { machineInfo, RESULT_FORMAT, type BenchResult } from './result.js';
import { evaluateTargets } from './targets.js';

describe('formatBytes and formatValue', () => {
  it('prints bytes in binary units', () => {
    expect(formatBytes(46.25)).toBe('46.3 B');
    expect(formatBytes(4096)).toBe('4.0 KiB');
    expect(formatBytes(8 * 1024 ** 3)).toBe('8.0 GiB');
  });

  it('groups large figures and keeps decimals on small ones', () => {
    expect(formatValue(1234567.8, 'ops/s')).toBe('1,234,568');
    expect(formatValue(0.834, 'x limit')).toBe('0.83');
    expect(formatValue(52.49, '%')).toBe('52.5%');
    expect(formatValue(1.88, 'x')).toBe('1.88x');
  });
});

describe('formatResult', () => {
  const copy = measurement({ suite: 'limits', group: 'machine', key: 'copy-hash', name: 'copy+hash', unit: 'pages/s', better: 'higher', samples: [1000, 1100, 900] });
  const nativeCopy = measurement({ suite: 'limits', group: 'native', key: 'copy-hash', name: 'C: XXH64 then memcpy', unit: 'pages/s', better: 'higher', samples: [2000, 2000, 2000] });
  const write = withLimit(
    withLimit(measurement({ suite: 'micro', group: 'hypervisor', key: 'inline-write-new', name: 'inline write', unit: 'pages/s', better: 'higher', samples: [500, 550, 450] }), copy, 'copy+hash'),
    nativeCopy,
    'native copy+XXH64',
    'native',
  );
  const saved = measurement({ suite: 'macro', group: 'dedup-inline', key: 'saved-pct', name: 'saved', unit: '%', better: 'higher', samples: [52.49], exact: true });
  const measurements = [copy, nativeCopy, write, saved];
  const result: BenchResult = {
    format: RESULT_FORMAT,
    date: '2026-11-26T00:00:00.000Z',
    argv: [],
    commit: 'f1eb8d2-dirty',
    options: { suites: ['limits', 'micro', 'macro'], quick: false, repeats: { limits: 3, micro: 3, macro: 1 } },
    machine: machineInfo(),
    suites: [
      { suite: 'limits', notes: ['a note'] },
      { suite: 'micro', notes: [] },
      { suite: 'macro', notes: [] },
    ],
    measurements,
    targets: evaluateTargets(measurements, false),
    errors: ['trace: it broke'],
    wallS: 1.5,
  };
  const text = formatResult(result).join('\n');

  it('prints a table per suite with median, ratio to the limit, spread and range', () => {
    expect(text).toContain('== limits (3 repeats)');
    expect(text).toContain('== macro (1 repeat)');
    expect(text).toMatch(/inline write\s+500\s+pages\/s\s+0\.50 x copy\+hash; 0\.25 x native copy\+XXH64\s+20\.0%\s+450 \.\. 550/);
    expect(text).toMatch(/saved\s+52\.5%\s+exact/);
    expect(text).toContain('  note: a note');
  });

  it('writes the same as a markdown document: command, targets, a table per suite, errors', () => {
    const md = formatMarkdown({ ...result, argv: ['--suite', 'limits,micro,macro'] });
    expect(md).toContain('- **Command:** `node apps/bench/dist/main.js --suite limits,micro,macro`');
    expect(md).toContain('- **Code:** `f1eb8d2-dirty` (with uncommitted changes)');
    expect(md).toMatch(/\| inline whole-page write of new content >= 0\.6 x native copy\+XXH64 \| 0\.25 x native.* \| \*\*missed\*\* \|/);
    expect(md).toContain('| group | measurement | median | ratio to limit (JS; native) | spread | min .. max |');
    expect(md).toContain('## limits (3 repeats)');
    expect(md).toContain('| hypervisor | inline write | 500 pages/s | 0.50 x copy+hash; 0.25 x native copy+XXH64 | 20.0% | 450 .. 550 |');
    expect(md).toContain('| dedup-inline | saved | 52.5% |  | exact |  |');
    expect(md).toContain('- a note');
    expect(md).toContain('## Errors (1)\n\n- trace: it broke');
  });

  it('names installed packages instead of a commit, the bin as the command, and the strategies given', () => {
    const installed: BenchResult = {
      ...result,
      argv: ['--suite', 'macro', '--strategy', './mine.mjs'],
      commit: null,
      code: { checkout: false, packages: { '@pagevisor/bench': '0.1.0', '@pagevisor/simulator': '0.1.0' } },
      strategies: [
        { kind: 'dedup', name: 'mine', specifier: './mine.mjs', builtIn: false },
        { kind: 'dedup', name: 'ksm', specifier: 'ksm', builtIn: true },
      ],
    };
    const md = formatMarkdown(installed);
    expect(md).toContain('- **Code:** installed packages, not a git checkout: @pagevisor/bench 0.1.0, @pagevisor/simulator 0.1.0');
    expect(md).toContain('- **Command:** `pagevisor-bench --suite macro --strategy ./mine.mjs` (installed packages)');
    expect(md).toContain('- **Strategies given (`--strategy`):** mine (./mine.mjs), ksm (ksm, built in: already in the matrix)');
    expect(formatResult(installed).join('\n')).toContain('Strategies given (--strategy): mine (./mine.mjs), ksm (ksm, built in: already in the matrix)');
    expect(formatMarkdown({ ...result, commit: null })).toContain('- **Code:** unknown (not a git checkout)');
  });

  it('prints the targets and the errors', () => {
    expect(text).toMatch(/MISSED\s+inline whole-page write of new content >= 0\.6 x native copy\+XXH64: 0\.25 x native/);
    expect(text).toMatch(/n\/a\s+KSM-mode scan/);
    expect(text).toContain('ERRORS (1):\n  trace: it broke');
  });

  it('prints a comparison with its changes and the regressions at the end', () => {
    const { native: _native, ...jsOnly } = write;
    const slower = { ...jsOnly, median: 300, samples: [300, 300, 300], spread: 0, limit: { ...write.limit!, ratio: 0.3 } };
    const lines = formatComparison(compareMeasurements(result, { measurements: [copy, nativeCopy, slower] }, 'old.json', 'then'));
    expect(lines[0]).toContain('compared with old.json (then)');
    expect(lines.join('\n')).toMatch(/REGRESSION\s+micro\.hypervisor\.inline-write-new\s+500 -> 300 pages\/s\s+0\.600x \(noise 20\.0%, vs limit 0\.600x\)/);
    expect(lines.join('\n')).toContain('only in the old run: macro.dedup-inline.saved-pct');
    expect(lines.at(-1)).toBe('Regressions (1): micro.hypervisor.inline-write-new');
  });

  it('shows the change of the native ratio too, and the targets judged against the earlier run', () => {
    const slower = { ...write, median: 300, samples: [300, 300, 300], spread: 0, limit: { ...write.limit!, ratio: 0.3 }, native: { ...write.native!, ratio: 0.15 } };
    const c = compareMeasurements(result, { measurements: [copy, nativeCopy, slower] }, 'old.json', 'then');
    const cpu: BenchResult['targets'][number] = { key: 'scale-cpu', name: "scale 16 x 1 GiB: CPU <= 0.5 x the --compare run's", op: '<=', threshold: 0.5, unit: 'x old', value: 0.4, met: true, source: 'scale.scale-16x1g.process-cpu-s', note: '12.0 s now, 30.0 s in old.json', against: 'old.json' };
    const lines = formatComparison({ ...c, targets: [cpu] }).join('\n');
    expect(lines).toMatch(/0\.600x \(noise 20\.0%, vs limit 0\.600x, vs native 0\.600x\)/);
    expect(lines).toContain("  targets judged against this run:\n    met     scale 16 x 1 GiB: CPU <= 0.5 x the --compare run's: 0.40 x old (12.0 s now, 30.0 s in old.json)");
    expect(formatComparison(c).join('\n')).not.toContain('targets judged');
  });

  it('names the other checkout whose simulator the scale suite ran', () => {
    const other: BenchResult = { ...result, code: { checkout: true, packages: {}, simulator: { root: '/work/old565', commit: '565f6c8' } } };
    expect(formatMarkdown(other)).toContain('- **Code:** `f1eb8d2-dirty` (with uncommitted changes); the scale suite ran the simulator of /work/old565 (`565f6c8`, --simulator-root)');
    expect(formatResult(other).join('\n')).toContain('The scale suite ran the simulator of /work/old565 (565f6c8), not this checkout\'s (--simulator-root).');
  });
});

describe('ratioCell', () => {
  it('gives the JavaScript ratio, then the native one, each when present', () => {
    const js = { id: 'limits.machine.copy', name: 'copy', ratio: 0.812 };
    const native = { id: 'limits.native.copy', name: 'native memcpy', ratio: 0.3149 };
    expect(ratioCell({ limit: js, native })).toBe('0.81 x copy; 0.31 x native memcpy');
    expect(ratioCell({ limit: js })).toBe('0.81 x copy');
    expect(ratioCell({ native })).toBe('0.31 x native memcpy');
    expect(ratioCell({})).toBe('');
  });
});
