import type { Sweep } from '@pagevisor/workloads';
import { escapeHtml, niceTicks, tickFormat } from '../html-report.js';
import type { ResultRow } from './results.js';

/** Colours of the strategies, in order of first appearance. */
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const W = 560;
const H = 320;
const M = { left: 64, right: 16, top: 16, bottom: 48 } as const;

type Figure = 'savedPct' | 'framesUsed' | 'cpuS' | 'convergedS' | 'cowFaults' | 'swapOuts' | 'swapIns' | 'duplicateFrames';
const TABLE: readonly [Figure, string][] = [
  ['savedPct', 'saved %'],
  ['framesUsed', 'frames used'],
  ['duplicateFrames', 'duplicate frames'],
  ['cowFaults', 'CoW faults'],
  ['swapOuts', 'swap outs'],
  ['swapIns', 'swap ins'],
  ['convergedS', 'converged at (s)'],
  ['cpuS', 'simulated CPU (s)'],
];

/** Mean and standard deviation (population) of `values`. */
function meanSd(values: readonly number[]): { mean: number; sd: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return { mean, sd: Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length) };
}

function fmt(v: number): string {
  return Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : Number(v.toPrecision(4)).toString();
}

/** The axes but `seed`: what a configuration is; seeds are its repeats. */
function configOf(row: ResultRow, axes: readonly string[]): string {
  return axes.filter((a) => a !== 'seed').map((a) => `${a}=${JSON.stringify(row.axes[a])}`).join(', ') || '(one configuration)';
}

interface Frame {
  x: (v: number) => number;
  y: (v: number) => number;
  svg: string[];
}

/** An empty chart: axes from 0 to the maxima, ticks and labels. */
function frame(xMax: number, yMax: number, xLabel: string, yLabel: string, xTicks?: readonly number[]): Frame {
  const xs = niceTicks(xMax);
  const ys = niceTicks(yMax);
  const xTop = xTicks === undefined ? xs.top : Math.max(...xTicks);
  const x = (v: number): number => M.left + (v / (xTop || 1)) * (W - M.left - M.right);
  const y = (v: number): number => H - M.bottom - (v / (ys.top || 1)) * (H - M.top - M.bottom);
  const fx = tickFormat(xTop);
  const fy = tickFormat(ys.top);
  const svg = [
    `<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="#888"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="#888"/>`,
    ...(xTicks ?? xs.ticks).map((t) => `<text x="${x(t).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle">${escapeHtml(fx(t))}</text>`),
    ...ys.ticks.map((t) => `<text x="${M.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${escapeHtml(fy(t))}</text><line x1="${M.left}" y1="${y(t).toFixed(1)}" x2="${W - M.right}" y2="${y(t).toFixed(1)}" stroke="#eee"/>`),
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 10}" text-anchor="middle">${escapeHtml(xLabel)}</text>`,
    `<text transform="translate(14 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(yLabel)}</text>`,
  ];
  return { x, y, svg };
}

function chart(title: string, f: Frame, legend: readonly [string, string][]): string {
  const keys = legend.map(([name, color], i) => `<span class="key"><svg width="12" height="12"><rect width="12" height="12" fill="${color}"/></svg> ${escapeHtml(name)}</span>${i < legend.length - 1 ? ' ' : ''}`).join('');
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(title)}">${f.svg.join('')}</svg><div class="legend">${keys}</div></figure>`;
}

/**
 * The sweep's comparison report, one self-contained page (no script, no external resource): a
 * table of each configuration's headline figures (mean and spread over its seeds), savings
 * against simulated CPU (a point per job, the best-of frontier drawn), convergence time per
 * strategy, and for each numeric axis but the seed, savings and CPU against it with the seeds'
 * spread as error bars.
 */
export function sweepHtml(sweep: Sweep, rows: readonly ResultRow[]): string {
  const axes = Object.keys(sweep.axes);
  const ok = rows.filter((r) => r.status === 'ok');
  const strategies = [...new Set(ok.map((r) => r.strategy!))];
  const color = (s: string): string => PALETTE[strategies.indexOf(s) % PALETTE.length]!;
  const legend = strategies.map((s) => [s, color(s)] as [string, string]);

  const configs = new Map<string, ResultRow[]>();
  for (const r of ok) configs.set(configOf(r, axes), [...(configs.get(configOf(r, axes)) ?? []), r]);
  const table = [
    `<table><thead><tr><th>configuration</th><th>strategy</th><th>runs</th>${TABLE.map(([, label]) => `<th>${escapeHtml(label)}</th>`).join('')}</tr></thead><tbody>`,
    ...[...configs].map(([config, rs]) => {
      const cells = TABLE.map(([k]) => {
        const { mean, sd } = meanSd(rs.map((r) => r[k]!));
        return `<td>${fmt(mean)}${rs.length > 1 ? ` ± ${fmt(sd)}` : ''}</td>`;
      });
      return `<tr><td>${escapeHtml(config)}</td><td>${escapeHtml(rs[0]!.strategy!)}</td><td>${rs.length}</td>${cells.join('')}</tr>`;
    }),
    '</tbody></table>',
  ].join('');

  const charts: string[] = [];
  if (ok.length > 0) {
    // Savings against CPU, and the frontier: the best saving at or below each CPU.
    const f = frame(Math.max(...ok.map((r) => r.cpuS!)), Math.max(...ok.map((r) => r.savedPct!), 1), 'simulated CPU (s)', 'saved %');
    const byCpu = [...ok].sort((a, b) => a.cpuS! - b.cpuS! || b.savedPct! - a.savedPct!);
    const front: ResultRow[] = [];
    for (const r of byCpu) if (front.length === 0 || r.savedPct! > front.at(-1)!.savedPct!) front.push(r);
    const d = front.map((r, i) => `${i === 0 ? 'M' : 'H'}${f.x(r.cpuS!).toFixed(1)} ${i === 0 ? '' : 'V'}${f.y(r.savedPct!).toFixed(1)}`).join(' ');
    f.svg.push(`<path class="frontier" d="${d}" fill="none" stroke="#444" stroke-dasharray="4 3"/>`);
    for (const r of ok) f.svg.push(`<circle class="point" cx="${f.x(r.cpuS!).toFixed(1)}" cy="${f.y(r.savedPct!).toFixed(1)}" r="4" fill="${color(r.strategy!)}"><title>${escapeHtml(`${configOf(r, axes)}, seed ${String(r.axes['seed'] ?? '')}: ${fmt(r.savedPct!)}% at ${fmt(r.cpuS!)} s`)}</title></circle>`);
    charts.push(chart('Savings against scanning CPU (one point per job; dashed: the best-of frontier)', f, legend));

    // Convergence time per strategy, mean and spread.
    const conv = strategies.map((s) => meanSd(ok.filter((r) => r.strategy === s).map((r) => r.convergedS!)));
    const g = frame(strategies.length, Math.max(...conv.map((c) => c.mean + c.sd), 0.001), 'strategy', 'converged at (simulated s)', []);
    const slot = (W - M.left - M.right) / strategies.length;
    strategies.forEach((s, i) => {
      const x = M.left + slot * i + slot * 0.2;
      const { mean, sd } = conv[i]!;
      g.svg.push(`<rect class="bar" x="${x.toFixed(1)}" y="${g.y(mean).toFixed(1)}" width="${(slot * 0.6).toFixed(1)}" height="${(g.y(0) - g.y(mean)).toFixed(1)}" fill="${color(s)}"/>`);
      g.svg.push(errorBar(x + slot * 0.3, g.y(mean - sd), g.y(mean + sd)));
      g.svg.push(`<text x="${(x + slot * 0.3).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle">${escapeHtml(s)}</text>`);
    });
    charts.push(chart('Convergence time per strategy (bars: mean over its jobs; whiskers: spread)', g, legend));

    // Each numeric axis but the seed: savings and CPU against it, per strategy, seeds as error bars.
    for (const axis of axes.filter((a) => a !== 'seed' && sweep.axes[a]!.every((v) => typeof v === 'number'))) {
      const values = [...new Set(sweep.axes[axis] as number[])].sort((a, b) => a - b);
      for (const [key, label] of [['savedPct', 'saved %'], ['cpuS', 'simulated CPU (s)']] as const) {
        const series = strategies.map((s) => ({ s, points: values.map((v) => ({ v, ...meanSd(ok.filter((r) => r.strategy === s && r.axes[axis] === v).map((r) => r[key]!)) })).filter((p) => !Number.isNaN(p.mean)) }));
        const top = Math.max(...series.flatMap((l) => l.points.map((p) => p.mean + p.sd)), 0.001);
        const h = frame(values.at(-1)!, top, axis, label, values);
        for (const { s, points } of series) {
          h.svg.push(`<path class="line" d="${points.map((p, i) => `${i === 0 ? 'M' : 'L'}${h.x(p.v).toFixed(1)} ${h.y(p.mean).toFixed(1)}`).join(' ')}" fill="none" stroke="${color(s)}" stroke-width="2"/>`);
          for (const p of points) h.svg.push(`<circle cx="${h.x(p.v).toFixed(1)}" cy="${h.y(p.mean).toFixed(1)}" r="3" fill="${color(s)}"/>${errorBar(h.x(p.v), h.y(p.mean - p.sd), h.y(p.mean + p.sd))}`);
        }
        charts.push(chart(`${label} against ${axis} (mean over seeds; whiskers: their spread)`, h, legend));
      }
    }
  }
  const failed = rows.filter((r) => r.status === 'failed');
  const failures = failed.length === 0 ? '' : `<h2>Failed jobs</h2><ul>${failed.map((r) => `<li><code>${escapeHtml(r.job)}</code> ${escapeHtml(JSON.stringify(r.axes))}: ${escapeHtml(r.error ?? '')}</li>`).join('')}</ul>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(`pagevisor sweep ${sweep.name}`)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child,td:nth-child(2){text-align:left}figure{display:inline-block;margin:8px 16px 16px 0;vertical-align:top}figcaption{font-weight:600;margin-bottom:4px;max-width:${W}px}svg.chart text{font-size:11px;fill:#333}.legend{font-size:12px}</style>
</head><body>
<h1>${escapeHtml(`Sweep ${sweep.name}`)}</h1>
<p>${rows.length} jobs over ${axes.map((a) => `<code>${escapeHtml(a)}</code> (${sweep.axes[a]!.length})`).join(' × ')}; ${ok.length} ran, ${failed.length} failed. Figures are simulated, so equal for every run of a job; mean ± spread over seeds.</p>
${table}
${charts.join('\n')}
${failures}
</body></html>
`;
}

function errorBar(x: number, yLow: number, yHigh: number): string {
  return `<path class="error-bar" d="M${x.toFixed(1)} ${yLow.toFixed(1)} V${yHigh.toFixed(1)} M${(x - 4).toFixed(1)} ${yLow.toFixed(1)} H${(x + 4).toFixed(1)} M${(x - 4).toFixed(1)} ${yHigh.toFixed(1)} H${(x + 4).toFixed(1)}" stroke="#333" fill="none"/>`;
}
