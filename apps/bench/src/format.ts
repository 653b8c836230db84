import type { Comparison, MeasurementComparison } from './compare.js';
import { LIMIT_KINDS, type LimitKind, type Measurement } from './measurement.js';
import type { BenchResult } from './result.js';
import type { Target } from './targets.js';

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `bytes` as B, KiB, MiB, GiB (one decimal above B). */
export function formatBytes(bytes: number): string {
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < BINARY_UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u > 0) return `${v.toFixed(1)} ${BINARY_UNITS[u]}`;
  return Number.isInteger(v) ? `${v} B` : `${v.toFixed(1)} B`;
}

/** A figure in its unit: bytes in binary units, large numbers grouped, small ones with decimals. */
export function formatValue(value: number, unit: string): string {
  if (unit === 'bytes') return formatBytes(value);
  const a = Math.abs(value);
  const text = a >= 1000 ? Math.round(value).toLocaleString('en-US') : a >= 100 ? value.toFixed(0) : a >= 10 ? value.toFixed(1) : value.toFixed(2);
  return unit === '%' ? `${text}%` : unit === 'x' ? `${text}x` : text;
}

function unitLabel(unit: string): string {
  return unit === 'bytes' || unit === '%' || unit === 'x' ? '' : unit;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** A figure with its unit label, e.g. `1,234 pages/s`, `52.5%`. */
function figure(value: number, unit: string): string {
  return `${formatValue(value, unit)} ${unitLabel(unit)}`.trimEnd();
}

/** The ratios of `m` to its bounds: the JavaScript one, then the native one (`0.82 x copy+hash (paired); 0.31 x native copy+XXH64`). */
export function ratioCell(m: Pick<Measurement, LimitKind>): string {
  return LIMIT_KINDS.flatMap((k) => {
    const r = m[k];
    return r === undefined ? [] : [`${r.ratio.toFixed(2)} x ${r.name}`];
  }).join('; ');
}

/** The columns of a measurement after its median: ratios to its bounds, spread, min..max. */
function statCells(m: Measurement): [ratio: string, spread: string, range: string] {
  return [
    ratioCell(m),
    m.exact === true ? 'exact' : m.samples.length < 2 ? '1 run' : pct(m.spread),
    m.samples.length < 2 || m.min === m.max ? '' : `${formatValue(m.min, m.unit)} .. ${formatValue(m.max, m.unit)}`,
  ];
}

/** Table rows of `ms`: name, median and unit, ratio to its limit, spread, min..max. */
export function measurementRows(ms: readonly Measurement[]): string[] {
  const rows = ms.map((m) => [m.name, formatValue(m.median, m.unit), unitLabel(m.unit), ...statCells(m), m.note ?? '']);
  const width = (c: number): number => Math.max(...rows.map((r) => r[c]!.length));
  const w = [0, 1, 2, 3, 4, 5].map(width);
  return rows.map((r) =>
    [r[0]!.padEnd(w[0]!), r[1]!.padStart(w[1]!), r[2]!.padEnd(w[2]!), r[3]!.padEnd(w[3]!), r[4]!.padStart(w[4]!), r[5]!.padEnd(w[5]!), r[6]!]
      .join('  ')
      .trimEnd(),
  );
}

/** The result as text: a table per suite (grouped by package or section), notes, targets, errors. */
export function formatResult(r: BenchResult): string[] {
  const lines: string[] = [];
  const m = r.machine;
  lines.push(`pagevisor bench, ${r.date}: ${m.cpus} CPUs (${m.cpuModel}), ${formatBytes(m.totalMemBytes)} RAM, Node ${m.node}, ${m.os}${r.options.quick ? ' — QUICK run' : ''}`);
  const sim = r.code?.simulator;
  if (sim !== undefined) lines.push(`The scale suite ran the simulator of ${sim.root} (${sim.commit ?? 'not a git checkout'}), not this checkout's (--simulator-root).`);
  lines.push('Columns: median of the repeats, ratios to the limits measured in this process (the JavaScript bound, then "native ...": the C reference\'s), spread = (max - min) / median, min .. max. exact: a simulated figure, equal in every run.');
  if ((r.strategies ?? []).length > 0) lines.push(`Strategies given (--strategy): ${strategiesText(r)}`);
  for (const s of r.suites) {
    const n = r.options.repeats[s.suite] ?? 0;
    lines.push('', `== ${s.suite} (${n} ${n === 1 ? 'repeat' : 'repeats'})`);
    const ms = r.measurements.filter((x) => x.suite === s.suite);
    const groups = [...new Set(ms.map((x) => x.group))];
    for (const g of groups) {
      lines.push(`  ${g}`);
      for (const row of measurementRows(ms.filter((x) => x.group === g))) lines.push(`    ${row}`);
    }
    for (const n of s.notes) lines.push(`  note: ${n}`);
  }
  lines.push('', ...formatTargets(r.targets));
  if (r.errors.length > 0) lines.push('', `ERRORS (${r.errors.length}):`, ...r.errors.map((e) => `  ${e.split('\n').join('\n    ')}`));
  lines.push('', `Total wall time ${r.wallS.toFixed(1)} s.`);
  return lines;
}

/** A markdown table cell: pipes escaped, line breaks flattened. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/**
 * The result as a markdown document (BENCHMARKS.md): when and where it ran, the command, the
 * targets, a table per suite with its notes, the errors and the comparison if any.
 */
export function formatMarkdown(r: BenchResult): string {
  const m = r.machine;
  const verdict = (t: Target): string => (t.met === true ? 'met' : t.met === false ? '**missed**' : t.value === null ? 'not measured' : 'not judged');
  const lines = [
    '# Benchmarks',
    '',
    r.code?.checkout === false
      ? 'Figures of the benchmark runner (`@pagevisor/bench`); how they are taken and how to read them: its README (`node_modules/@pagevisor/bench/README.md`).'
      : 'Figures of the benchmark runner (`apps/bench`); how they are taken and how to read them: [its README](apps/bench/README.md).',
    'This file is its `--markdown` output.',
    'The ratio column gives each hot path over its bounds: first the JavaScript bound (the limits suite\'s `machine` rows, this process\'s MachineMemory copy, XXH64 in place and compare, or a loop timed beside it: "(paired)"), then the native bound ("native ...": the C reference\'s memcpy, memcmp and XXH64 loops, the `native` rows, what the machine itself does).',
    '',
    `- **Date:** ${r.date} (whole run ${r.wallS.toFixed(0)} s)${r.options.quick ? ' — a QUICK run: small sizes, not comparable with full runs' : ''}`,
    `- **Code:** ${codeText(r)}`,
    `- **Machine:** ${m.cpus} CPUs (${m.cpuModel}; ${m.availableParallelism} available to Node), ${formatBytes(m.totalMemBytes)} RAM, ${m.os}, Node ${m.node}, ${m.arch}`,
    r.code?.checkout === false
      ? `- **Command:** \`pagevisor-bench ${r.argv.join(' ')}\` (installed packages)`
      : `- **Command:** \`node apps/bench/dist/main.js ${r.argv.join(' ')}\` (after \`npx nx run bench:build --outputStyle=static\`)`,
    ...((r.strategies ?? []).length > 0 ? [`- **Strategies given (\`--strategy\`):** ${cell(strategiesText(r))}`] : []),
    '',
    '## Targets',
    '',
    '| target | figure | verdict |',
    '| --- | --- | --- |',
    ...r.targets.map((t) => `| ${cell(t.name)} | ${t.value === null ? '-' : figure(t.value, t.unit)}${t.note === undefined ? '' : ` (${cell(t.note)})`} | ${verdict(t)} |`),
  ];
  for (const s of r.suites) {
    const n = r.options.repeats[s.suite] ?? 0;
    lines.push('', `## ${s.suite} (${n} ${n === 1 ? 'repeat' : 'repeats'})`, '');
    lines.push('| group | measurement | median | ratio to limit (JS; native) | spread | min .. max |', '| --- | --- | ---: | --- | ---: | --- |');
    for (const x of r.measurements.filter((y) => y.suite === s.suite)) {
      const name = `${cell(x.name)}${x.note === undefined ? '' : ` (${cell(x.note)})`}`;
      lines.push(`| ${[x.group, name, figure(x.median, x.unit), ...statCells(x)].join(' | ')} |`);
    }
    if (s.notes.length > 0) lines.push('', ...s.notes.map((note) => `- ${note}`));
  }
  if (r.errors.length > 0) lines.push('', `## Errors (${r.errors.length})`, '', ...r.errors.map((e) => `- ${cell(e)}`));
  if (r.comparison !== undefined) lines.push('', '## Comparison', '', '```text', ...formatComparison(r.comparison), '```');
  return `${lines.join('\n')}\n`;
}

/** The code line: the commit, else the installed packages' versions; and the other checkout whose simulator the scale suite ran. */
function codeText(r: BenchResult): string {
  const sim = r.code?.simulator;
  const other = sim === undefined ? '' : `; the scale suite ran the simulator of ${sim.root} (${sim.commit === null ? 'not a git checkout' : `\`${sim.commit}\``}, --simulator-root)`;
  return `${ownCodeText(r)}${other}`;
}

function ownCodeText(r: BenchResult): string {
  if (r.commit !== null) return `\`${r.commit}\`${r.commit.endsWith('-dirty') ? ' (with uncommitted changes)' : ''}`;
  const versions = Object.entries(r.code?.packages ?? {}).map(([name, v]) => `${name} ${v}`).join(', ');
  if (r.code?.checkout === false) return `installed packages, not a git checkout${versions === '' ? '' : `: ${versions}`}`;
  return `unknown (not a git checkout)${versions === '' ? '' : `; ${versions}`}`;
}

/** The `--strategy` plugins given: `name (specifier)`, built-ins marked. */
function strategiesText(r: BenchResult): string {
  return (r.strategies ?? []).map((s) => `${s.name} (${s.specifier}${s.builtIn ? ', built in: already in the matrix' : ''})`).join(', ');
}

/** The targets section: met, missed or not measured, with the figure. */
export function formatTargets(targets: readonly Target[]): string[] {
  const lines = ['== targets'];
  for (const t of targets) {
    const verdict = t.met === true ? 'met   ' : t.met === false ? 'MISSED' : t.value === null ? 'n/a   ' : 'info  ';
    lines.push(`  ${verdict}  ${t.name}${t.value === null ? '' : `: ${figure(t.value, t.unit)}`}${t.note === undefined ? '' : ` (${t.note})`}`);
  }
  return lines;
}

/** Ids in full when few, else counted by suite (a suite run in one run only adds dozens). */
function idList(ids: readonly string[]): string {
  if (ids.length <= 10) return ids.join(', ');
  const bySuite = new Map<string, number>();
  for (const id of ids) {
    const suite = id.split('.')[0]!;
    bySuite.set(suite, (bySuite.get(suite) ?? 0) + 1);
  }
  return `${ids.length} (${[...bySuite].map(([s, n]) => `${s}: ${n}`).join(', ')})`;
}

function ratioText(e: MeasurementComparison): string {
  return Number.isFinite(e.ratio) ? `${e.ratio.toFixed(3)}x` : 'from 0';
}

/** The comparison: counts, then every changed measurement, then the regressions again at the end. */
export function formatComparison(c: Comparison): string[] {
  const drift = c.machineDrift > 0 ? `, the machine's drift ${pct(c.machineDrift)}` : '';
  const lines = [`== compared with ${c.against} (${c.againstDate}): new/old of each median; noise = max(both spreads, 5%${drift})`];
  for (const w of c.warnings) lines.push(`  warning: ${w}`);
  const unchanged = c.entries.length - c.regressions.length - c.improvements.length;
  lines.push(`  ${c.entries.length} in both: ${c.regressions.length} regressions, ${c.improvements.length} improvements, ${unchanged} unchanged; ${c.onlyInOld.length} only in the old run, ${c.onlyInNew.length} only in the new`);
  const changed = c.entries.filter((e) => e.verdict !== 'unchanged');
  const w = Math.max(0, ...changed.map((e) => e.id.length));
  for (const e of changed) {
    const vsLimit = `${e.limitRatioChange === undefined ? '' : `, vs limit ${e.limitRatioChange.toFixed(3)}x`}${e.nativeRatioChange === undefined ? '' : `, vs native ${e.nativeRatioChange.toFixed(3)}x`}`;
    lines.push(`  ${e.verdict === 'regression' ? 'REGRESSION ' : 'improvement'} ${e.id.padEnd(w)}  ${formatValue(e.oldMedian, e.unit)} -> ${formatValue(e.newMedian, e.unit)} ${unitLabel(e.unit)}  ${ratioText(e)} (noise ${pct(e.noise)}${vsLimit})`);
  }
  if (c.onlyInOld.length > 0) lines.push(`  only in the old run: ${idList(c.onlyInOld)}`);
  if (c.onlyInNew.length > 0) lines.push(`  only in the new run: ${idList(c.onlyInNew)}`);
  if ((c.targets ?? []).length > 0) lines.push('  targets judged against this run:', ...formatTargets(c.targets!).slice(1).map((l) => `  ${l}`));
  lines.push('', c.regressions.length === 0 ? 'No regressions.' : `Regressions (${c.regressions.length}): ${c.regressions.join(', ')}`);
  return lines;
}
