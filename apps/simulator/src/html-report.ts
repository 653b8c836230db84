import { writeFile } from 'node:fs/promises';
import { NS_PER_MS, NS_PER_S } from '@pagevisor/types';
import { deriveTimeline, type DerivedSample } from './csv-report.js';
import type { Report } from './report.js';

/** Most samples a time chart draws; longer timelines are thinned to every k-th sample (and the last). */
export const MAX_DRAWN_SAMPLES = 1500;

/** Colours of the series (Tableau 10), one per meaning, used alike in every chart. */
const COLOR = {
  private: '#4e79a7',
  shared: '#59a14f',
  zero: '#edc948',
  free: '#d9dde3',
  paged: '#e15759',
  pod: '#bab0ac',
  guest: '#333333',
  cow: '#f28e2b',
  zeroFault: '#b07aa1',
  swapOut: '#e15759',
  swapIn: '#76b7b2',
  slots: '#9c755f',
  converged: '#2a6f3a',
} as const;

/** Escapes `text` for HTML and SVG text and for attribute values in double or single quotes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A coordinate to one decimal: small files, and the same text for the same report. */
function px(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/**
 * The tick labels of an axis ending at `top`: one unit for the whole axis (k from 10 000, M from
 * 10 000 000), so 5k sits beside 10k rather than 5000 beside 10k.
 */
export function tickFormat(top: number): (v: number) => string {
  if (top >= 1e7) return (v) => (v === 0 ? '0' : `${trim(v / 1e6)}M`);
  if (top >= 1e4) return (v) => (v === 0 ? '0' : `${trim(v / 1e3)}k`);
  return trim;
}

function trim(v: number): string {
  return String(Number(v.toFixed(3)));
}

/** An integer with thin spaces between thousands (locale-independent, so the file never varies). */
function grouped(n: number): string {
  const s = String(Math.round(Math.abs(n)));
  return `${n < 0 ? '−' : ''}${s.replace(/\B(?=(\d{3})+(?!\d))/g, '\u2009')}`;
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}

function seconds(ns: number): string {
  return ns >= NS_PER_S || ns === 0 ? `${(ns / NS_PER_S).toFixed(2)} s` : `${(ns / NS_PER_MS).toFixed(2)} ms`;
}

/** Ticks 0, step, 2·step ... with a 1-2-5 step, about `count` of them up to `max`. */
export function niceTicks(max: number, count = 5): { top: number; ticks: number[] } {
  const m = max > 0 && Number.isFinite(max) ? max : 1;
  const raw = m / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((f) => f * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let i = 0; ; i++) {
    // toPrecision: 3 × 0.1 would print as 0.30000000000000004.
    const v = Number((i * step).toPrecision(12));
    ticks.push(v);
    if (v >= m) return { top: v, ticks };
  }
}

/** Ticks of the time axis: up to `end`, which stays the axis's end (no empty space after the run). */
function timeTicks(endS: number): number[] {
  return niceTicks(endS, 8).ticks.filter((t) => t <= endS * (1 + 1e-9));
}

/** Approximate width of `text` at 12 px in the sans-serif stack: enough to lay out legends. */
function textWidth(text: string, fontPx = 12): number {
  return text.length * fontPx * 0.58;
}

interface Series {
  readonly label: string;
  readonly color: string;
}

/** A legend row (wrapping) at the top of a chart, from x `left` to `right`; returns the SVG and its height. */
function legend(series: readonly Series[], left: number, right: number, y: number): { svg: string; height: number } {
  let x = left;
  let row = 0;
  const parts: string[] = [];
  for (const s of series) {
    const w = 14 + textWidth(s.label) + 18;
    if (x + w > right && x > left) {
      x = left;
      row++;
    }
    const ty = y + row * 18;
    parts.push(
      `<rect x="${px(x)}" y="${px(ty - 9)}" width="10" height="10" fill="${s.color}"/>`,
      `<text x="${px(x + 14)}" y="${px(ty)}" class="legend">${escapeHtml(s.label)}</text>`,
    );
    x += w;
  }
  return { svg: `<g class="legend">${parts.join('')}</g>`, height: (row + 1) * 18 };
}

const CHART_W = 600;
const CHART_H = 330;
const MARGIN = { left: 62, right: 18, bottom: 46 } as const;

/** The plot area and scales of a time chart. */
interface Frame {
  readonly x: (tS: number) => number;
  readonly y: (v: number) => number;
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
}

/**
 * A time chart: legend, axes with their labels and grid, then `draw` (given the scales) on top.
 * `yMax` is the largest value drawn.
 */
function timeChart(opts: {
  id: string;
  title: string;
  series: readonly Series[];
  endS: number;
  yMax: number;
  yLabel: string;
  draw: (f: Frame) => string;
  note?: string;
}): string {
  const left = MARGIN.left;
  const right = CHART_W - MARGIN.right;
  const lg = legend(opts.series, left, right, 16);
  const top = 16 + lg.height + 6;
  const bottom = CHART_H - MARGIN.bottom;
  const endS = opts.endS > 0 ? opts.endS : 1;
  const yt = niceTicks(opts.yMax);
  const x = (t: number): number => left + (t / endS) * (right - left);
  const y = (v: number): number => bottom - (v / yt.top) * (bottom - top);
  const yFmt = tickFormat(yt.top);
  const grid = yt.ticks
    .map((v) => `<line x1="${left}" x2="${right}" y1="${px(y(v))}" y2="${px(y(v))}" class="grid"/><text x="${left - 6}" y="${px(y(v) + 4)}" class="tick" text-anchor="end">${yFmt(v)}</text>`)
    .join('');
  const xTicks = timeTicks(endS)
    .map((t) => `<line x1="${px(x(t))}" x2="${px(x(t))}" y1="${bottom}" y2="${bottom + 4}" class="axis"/><text x="${px(x(t))}" y="${bottom + 17}" class="tick" text-anchor="middle">${trim(t)}</text>`)
    .join('');
  const note =
    opts.note === undefined
      ? ''
      : `<text x="${px((left + right) / 2)}" y="${px((top + bottom) / 2)}" class="note" text-anchor="middle">${escapeHtml(opts.note)}</text>`;
  return [
    `<svg class="chart" data-chart="${opts.id}" viewBox="0 0 ${CHART_W} ${CHART_H}" role="img" aria-label="${escapeHtml(opts.title)}">`,
    lg.svg,
    `<g class="grid">${grid}</g>`,
    `<g class="data">${opts.draw({ x, y, left, right, top, bottom })}</g>`,
    `<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" class="axis"/><line x1="${left}" x2="${left}" y1="${top}" y2="${bottom}" class="axis"/>`,
    `<g class="xticks">${xTicks}</g>`,
    `<text x="${px((left + right) / 2)}" y="${CHART_H - 8}" class="label" text-anchor="middle">simulated time (s)</text>`,
    `<text transform="translate(14 ${px((top + bottom) / 2)}) rotate(-90)" class="label" text-anchor="middle">${escapeHtml(opts.yLabel)}</text>`,
    note,
    '</svg>',
  ].join('');
}

/** A polyline through the samples. */
function linePath(rows: readonly DerivedSample[], value: (r: DerivedSample) => number, f: Frame): string {
  return rows.map((r, i) => `${i === 0 ? 'M' : 'L'}${px(f.x(r.tS))} ${px(f.y(value(r)))}`).join('');
}

/** A step line: each rate held over the interval it was measured on (the first sample has none). */
function stepPath(rows: readonly DerivedSample[], value: (r: DerivedSample) => number | null, f: Frame): string {
  const parts: string[] = [];
  for (let i = 1; i < rows.length; i++) {
    const v = value(rows[i]!);
    if (v === null) continue;
    const x0 = px(f.x(rows[i - 1]!.tS));
    parts.push(`${parts.length === 0 ? 'M' : 'L'}${x0} ${px(f.y(v))}H${px(f.x(rows[i]!.tS))}`);
  }
  return parts.join('');
}

function path(d: string, color: string, extra = ''): string {
  return d === '' ? '' : `<path d="${d}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round"${extra}/>`;
}

/** The samples drawn: all of them, or every k-th one and the last when there are too many. */
function drawnSamples(report: Report): { rows: DerivedSample[]; stride: number } {
  const t = report.timeline;
  const stride = Math.max(1, Math.ceil(t.length / MAX_DRAWN_SAMPLES));
  const picked = stride === 1 ? t : t.filter((_, i) => i % stride === 0 || i === t.length - 1);
  return { rows: deriveTimeline(picked, report.config.machine.frames), stride };
}

function framesChart(report: Report, rows: readonly DerivedSample[], endS: number): string {
  const frames = report.config.machine.frames;
  // Bottom to top; each layer's lower edge is the one below's upper edge.
  const layers: { series: Series; value: (r: DerivedSample) => number }[] = [
    { series: { label: 'private', color: COLOR.private }, value: (r) => r.privateFrames },
    { series: { label: 'shared', color: COLOR.shared }, value: (r) => r.pagesShared },
    { series: { label: 'zero frame', color: COLOR.zero }, value: () => 1 },
    { series: { label: 'free', color: COLOR.free }, value: (r) => r.machineFramesFree },
  ];
  const guestLine: Series = { label: 'guest pages (dashed)', color: COLOR.guest };
  const convergedS = report.dedup.convergedAtNs / NS_PER_S;
  const convergedLine: Series = { label: `converged at ${trim(Number(convergedS.toFixed(2)))} s (dotted)`, color: COLOR.converged };
  const yMax = Math.max(frames, ...rows.map((r) => r.guestPages));
  return timeChart({
    id: 'frames',
    title: 'Machine frames by state',
    series: [...layers.map((l) => l.series), guestLine, convergedLine],
    endS,
    yMax,
    yLabel: 'machine frames (4 KiB each)',
    draw: (f) => {
      const below = rows.map(() => 0);
      const areas = layers.map((l) => {
        const lower = below.slice();
        rows.forEach((r, i) => (below[i] = below[i]! + l.value(r)));
        const upper = rows.map((r, i) => `${i === 0 ? 'M' : 'L'}${px(f.x(r.tS))} ${px(f.y(below[i]!))}`).join('');
        const back = rows
          .map((r, i) => ({ r, v: lower[i]! }))
          .reverse()
          .map(({ r, v }) => `L${px(f.x(r.tS))} ${px(f.y(v))}`)
          .join('');
        return `<path d="${upper}${back}Z" fill="${l.series.color}" stroke="none"><title>${escapeHtml(l.series.label)}</title></path>`;
      });
      const cx = px(f.x(convergedS));
      const converged = `<line x1="${cx}" x2="${cx}" y1="${f.top}" y2="${f.bottom}" class="marker"/>`;
      return `${areas.join('')}${path(linePath(rows, (r) => r.guestPages, f), COLOR.guest, ' stroke-dasharray="6 4"')}${converged}`;
    },
  });
}

function swapChart(report: Report, rows: readonly DerivedSample[], endS: number): string {
  return timeChart({
    id: 'swap',
    title: 'Swap use',
    series: [
      { label: 'guest pages on swap', color: COLOR.paged },
      { label: 'swap slots used', color: COLOR.slots },
    ],
    endS,
    yMax: Math.max(...rows.map((r) => Math.max(r.pagedPages, r.swapSlotsUsed))),
    yLabel: 'pages / slots (4 KiB each)',
    draw: (f) =>
      path(linePath(rows, (r) => r.pagedPages, f), COLOR.paged) + path(linePath(rows, (r) => r.swapSlotsUsed, f), COLOR.slots, ' stroke-dasharray="5 3"'),
    ...(report.swap === undefined ? { note: 'no swap on this machine' } : {}),
  });
}

/**
 * Where a rate chart's y axis stops: the largest rate, unless a few intervals (boot, say) dwarf
 * the rest, when it stops at 1.5 × the 90th percentile so the rest stay readable; those few are
 * drawn cut at the top and named in the caption.
 */
export function rateAxisMax(values: readonly number[]): { max: number; clipped: boolean } {
  const sorted = values.filter((v) => v > 0).sort((a, b) => a - b);
  const peak = sorted.at(-1) ?? 0;
  const p90 = sorted[Math.floor(0.9 * (sorted.length - 1))] ?? 0;
  return peak > 4 * p90 && p90 > 0 ? { max: 1.5 * p90, clipped: true } : { max: peak, clipped: false };
}

interface RateLine {
  readonly series: Series;
  readonly value: (r: DerivedSample) => number | null;
}

/** A chart of rates as steps, and the caption's words on the steps cut at the top (empty when none was). */
function rateChart(opts: {
  id: string;
  title: string;
  rows: readonly DerivedSample[];
  endS: number;
  yLabel: string;
  lines: readonly RateLine[];
  note?: string;
}): { svg: string; clipNote: string } {
  const axis = rateAxisMax(opts.lines.flatMap((l) => opts.rows.map((r) => l.value(r) ?? 0)));
  const top = niceTicks(axis.max).top;
  const cut = (l: RateLine) => (r: DerivedSample) => {
    const v = l.value(r);
    return v === null ? null : Math.min(v, top);
  };
  let clipNote = '';
  if (axis.clipped) {
    // Name each line's peak: where it is and how far past the axis it goes.
    const peaks = opts.lines.flatMap((l) => {
      let at = -1;
      opts.rows.forEach((r, i) => {
        if ((l.value(r) ?? 0) > top && (at < 0 || l.value(r)! > l.value(opts.rows[at]!)!)) at = i;
      });
      if (at < 1) return [];
      const from = opts.rows[at - 1]!.tS;
      return [`${l.series.label} peak at ${grouped(l.value(opts.rows[at]!)!)} (${trim(from)}–${trim(opts.rows[at]!.tS)} s)`];
    });
    clipNote = ` The axis stops at ${tickFormat(top)(top)}: taller steps are cut at the top (${peaks.join('; ')}).`;
  }
  const svg = timeChart({
    id: opts.id,
    title: opts.title,
    series: opts.lines.map((l) => l.series),
    endS: opts.endS,
    yMax: top,
    yLabel: opts.yLabel,
    draw: (f) => opts.lines.map((l) => path(stepPath(opts.rows, cut(l), f), l.series.color)).join(''),
    ...(opts.note === undefined ? {} : { note: opts.note }),
  });
  return { svg, clipNote };
}

/** Longest domain name shown in full on the bar chart; longer ones end in an ellipsis (full name in the tooltip). */
const NAME_CHARS = 28;

function domainsChart(report: Report): string {
  const doms = report.domains;
  const hasPod = doms.some((d) => d.podPages > 0);
  const parts: { series: Series; value: (d: Report['domains'][number]) => number }[] = [
    { series: { label: 'private', color: COLOR.private }, value: (d) => d.privatePages },
    { series: { label: 'shared', color: COLOR.shared }, value: (d) => d.sharedPages },
    { series: { label: 'zero', color: COLOR.zero }, value: (d) => d.zeroPages },
    { series: { label: 'paged (on swap)', color: COLOR.paged }, value: (d) => d.pagedPages },
    ...(hasPod ? [{ series: { label: 'populate on demand', color: COLOR.pod }, value: (d: Report['domains'][number]) => d.podPages }] : []),
  ];
  const names = doms.map((d) => (d.name.length > NAME_CHARS ? `${d.name.slice(0, NAME_CHARS - 1)}…` : d.name));
  const width = 1200;
  const left = Math.max(70, Math.ceil(Math.max(0, ...names.map((n) => textWidth(n))) + 16));
  const right = width - 110;
  const lg = legend(
    parts.map((p) => p.series),
    left,
    right,
    16,
  );
  const top = 16 + lg.height + 8;
  const rowH = 24;
  const bottom = top + Math.max(1, doms.length) * rowH;
  const height = bottom + 46;
  const totals = doms.map((d) => parts.reduce((n, p) => n + p.value(d), 0));
  const xt = niceTicks(Math.max(1, ...totals), 10);
  const x = (v: number): number => left + (v / xt.top) * (right - left);
  const xFmt = tickFormat(xt.top);
  const grid = xt.ticks
    .map((v) => `<line x1="${px(x(v))}" x2="${px(x(v))}" y1="${top}" y2="${bottom}" class="grid"/><text x="${px(x(v))}" y="${bottom + 17}" class="tick" text-anchor="middle">${xFmt(v)}</text>`)
    .join('');
  const bars = doms
    .map((d, i) => {
      const y = top + i * rowH + 4;
      let at = 0;
      const rects = parts
        .map((p) => {
          const v = p.value(d);
          const r = v > 0 ? `<rect class="bar" x="${px(x(at))}" y="${y}" width="${px(x(at + v) - x(at))}" height="${rowH - 8}" fill="${p.series.color}"><title>${escapeHtml(`${d.name}: ${v} ${p.series.label} pages`)}</title></rect>` : '';
          at += v;
          return r;
        })
        .join('');
      return `<g class="domain"><text x="${left - 8}" y="${y + rowH / 2}" class="tick" text-anchor="end">${escapeHtml(names[i]!)}<title>${escapeHtml(`${d.name} (dom ${d.domId})`)}</title></text>${rects}<text x="${px(x(totals[i]!) + 6)}" y="${y + rowH / 2}" class="tick">${grouped(totals[i]!)}</text></g>`;
    })
    .join('');
  const note = doms.length === 0 ? `<text x="${px((left + right) / 2)}" y="${top + 16}" class="note" text-anchor="middle">no domains</text>` : '';
  return [
    `<svg class="chart" data-chart="domains" viewBox="0 0 ${width} ${height}" role="img" aria-label="Guest pages per domain">`,
    lg.svg,
    `<g class="grid">${grid}</g>`,
    `<g class="data">${bars}</g>`,
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${bottom}" class="axis"/><line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" class="axis"/>`,
    `<text x="${px((left + right) / 2)}" y="${height - 8}" class="label" text-anchor="middle">guest pages (4 KiB each) at the end of the run</text>`,
    note,
    '</svg>',
  ].join('');
}

function figure(title: string, chart: string, caption: string, wide = false): string {
  return `<figure${wide ? ' class="wide"' : ''}><h2>${escapeHtml(title)}</h2>${chart}<figcaption>${caption}</figcaption></figure>`;
}

function card(label: string, value: string, detail = ''): string {
  return `<div class="card"><div class="value">${escapeHtml(value)}</div><div class="what">${escapeHtml(label)}</div>${detail === '' ? '' : `<div class="detail">${escapeHtml(detail)}</div>`}</div>`;
}

const STYLE = `
*{box-sizing:border-box}
body{margin:0;padding:20px 28px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans","Liberation Sans",sans-serif;color:#222;background:#f6f7f9}
header h1{margin:0 0 4px;font-size:22px;font-weight:600}
header h1 q{font-weight:700}
.meta{color:#555;margin:0 0 14px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:14px}
.card{flex:1 1 0;min-width:max-content;background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:8px 12px}
.card .value{font-size:20px;font-weight:600}
.card .what{color:#555;font-size:12px}
.card .detail{color:#777;font-size:11px}
.card.headline .value{color:#2a6f3a;font-size:24px}
.alert{background:#fdecea;border:1px solid #f5c2c0;border-radius:6px;padding:8px 14px;margin-bottom:14px}
.alert h2{font-size:14px;margin:0 0 4px}
.alert ul{margin:0;padding-left:18px}
.grid-2{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:14px}
figure{margin:0;background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 12px}
figure.wide{grid-column:1/-1}
figure h2{font-size:15px;margin:0 0 4px;font-weight:600}
figcaption{color:#555;font-size:12px;margin-top:4px}
svg.chart{display:block;width:100%;height:auto}
svg text{font-family:inherit;fill:#333}
svg .tick{font-size:11px;fill:#444}
svg .legend{font-size:12px}
svg .label{font-size:12px;fill:#333}
svg .note{font-size:14px;fill:#888}
svg line.grid{stroke:#e6e8eb;stroke-width:1}
svg line.axis{stroke:#666;stroke-width:1}
svg line.marker{stroke:#2a6f3a;stroke-width:1.5;stroke-dasharray:3 3}
footer{color:#777;font-size:12px;margin-top:14px}
`;

/**
 * The HTML report of `report`: one self-contained page (inline CSS and SVG, no script, nothing
 * fetched) with the scenario, strategy and headline figures, then charts over simulated time —
 * machine frames by state (stacked), swap use, copy-on-write and zero faults per simulated
 * second, swap traffic per simulated second — and each domain's pages at the end. Every string
 * taken from the report is escaped. The wall-clock figures are left out, so runs of one scenario
 * and seed give byte-identical pages.
 */
export function renderHtmlReport(report: Report): string {
  const t = report.totals;
  const c = report.config;
  const frames = c.machine.frames;
  const { rows, stride } = drawnSamples(report);
  const endS = report.simulatedNs / NS_PER_S;
  const last = rows.at(-1);
  const pct = (n: number, of: number): string => (of === 0 ? '0.0%' : `${((n / of) * 100).toFixed(1)}%`);
  const sw = report.swap;
  const swapMeta = sw === undefined ? 'no swap' : `swap: ${sw.mode}, ${sw.device} device, ${sw.policy} eviction, compression ${sw.compression}`;
  const meta = [
    `strategy ${report.dedup.strategy}`,
    `seed ${report.seed}`,
    `${c.machine.memoryMiB} MiB RAM (${frames} frames${c.machine.contents === 'fingerprints' ? ', fingerprints' : ''}), ${c.machine.allocator} allocator${c.machine.numaNodes > 1 ? `, ${c.machine.numaNodes} NUMA nodes` : ''}`,
    swapMeta,
    `${report.guests.length} guests`,
    `${seconds(report.simulatedNs)} simulated`,
  ].join(' · ');
  const cards = [
    `<div class="card headline"><div class="value">${escapeHtml(`${t.savedPct.toFixed(2)}%`)}</div><div class="what">saved by sharing</div></div>`,
    card('frames used', grouped(t.machineFramesUsed), `${pct(t.machineFramesUsed, frames)} of ${grouped(frames)}`),
    card('guest pages', grouped(t.guestPages)),
    card('shared frames', grouped(t.pagesShared), `${grouped(t.pagesSharing)} pages sharing`),
    card('zero pages', grouped(t.zeroPages)),
    card('copy-on-write faults', grouped(t.cowFaults), `${grouped(t.zeroFaults)} zero faults`),
    ...(sw === undefined ? [] : [card('pages on swap', grouped(t.pagedPages), `${grouped(sw.swapOuts)} out / ${grouped(sw.swapIns)} in`)]),
    card('converged at', seconds(report.dedup.convergedAtNs), `dedup cpu ${seconds(report.cpu.dedupNs)}`),
  ].join('');

  const problems = [
    ...report.failures.map((f) => `${f.guest} (dom ${f.domId}) failed at ${seconds(f.atNs)}: ${f.errno} in ${f.op}: ${f.message}`),
    ...report.steps.filter((s) => s.failed).map((s) => `step ${s.op} failed at ${seconds(s.tNs)}: ${s.message ?? ''}`),
  ];
  const alert =
    problems.length === 0
      ? ''
      : `<section class="alert"><h2>${problems.length} problem(s)</h2><ul>${problems.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul></section>`;

  const thinned = stride === 1 ? '' : ` One sample in ${stride} of the ${report.timeline.length} is drawn (and the last); rates are over the intervals between those drawn.`;
  const zeroPagesEnd = last?.zeroPages ?? 0;
  const diskNote =
    sw === undefined
      ? 'This machine has no swap: both lines stay at 0.'
      : `Fewer slots than pages when identical pages share a slot. Device bytes in use at the end: ${mib(last?.swapDiskBytes ?? 0)} (peak ${mib(sw.swapDiskBytesShared ?? sw.swapDiskBytesPerDomain ?? 0)}, compression ${escapeHtml(sw.compression)}).`;
  const rateNote = `Rises of the cumulative counters between two samples divided by the simulated seconds between them; each level holds over its interval (every ${trim(c.sampleIntervalS * stride)} s).`;
  const faults = rateChart({
    id: 'faults',
    title: 'Faults per simulated second',
    rows,
    endS,
    yLabel: 'faults per simulated second',
    lines: [
      { series: { label: 'copy-on-write faults/s', color: COLOR.cow }, value: (r) => r.cowFaultsPerS },
      { series: { label: 'zero-page faults/s', color: COLOR.zeroFault }, value: (r) => r.zeroFaultsPerS },
    ],
  });
  const swapRates = rateChart({
    id: 'swap-rates',
    title: 'Swap traffic per simulated second',
    rows,
    endS,
    yLabel: 'pages per simulated second',
    lines: [
      { series: { label: 'swap-outs/s', color: COLOR.swapOut }, value: (r) => r.swapOutsPerS },
      { series: { label: 'swap-ins/s', color: COLOR.swapIn }, value: (r) => r.swapInsPerS },
    ],
    ...(sw === undefined ? { note: 'no swap on this machine' } : {}),
  });

  const charts = [
    figure(
      'Machine frames by state',
      framesChart(report, rows, endS),
      `Stacked: <b>private</b> = frames used − shared frames − 1 (the zero frame); <b>shared</b> = frames mapped by two or more guest pages (pagesShared); <b>zero frame</b> = the host's one all-zero frame (1 frame, mapped by ${grouped(zeroPagesEnd)} pages at the end); <b>free</b> = RAM frames − frames used. The dashed line is the guest pages populated: the frames the guests would need without sharing. The dotted green line marks convergence (frames used within 0.5% of the final value).${thinned}`,
    ),
    figure('Swap use', swapChart(report, rows, endS), `Guest pages whose content is on swap, and the swap slots holding them. ${diskNote}`),
    figure(
      'Copy-on-write and zero faults per simulated second',
      faults.svg,
      `Writes to a shared frame (copy-on-write) and to a page mapping the zero frame. ${rateNote}${faults.clipNote}`,
    ),
    figure(
      'Swap traffic per simulated second',
      swapRates.svg,
      `Pages stored to swap (out) and read back (in). ${rateNote}${swapRates.clipNote}`,
    ),
    figure(
      'Guest pages per domain',
      domainsChart(report),
      'Each domain at the end of the run: <b>private</b> pages map a frame of their own, <b>shared</b> pages a frame shared with other pages, <b>zero</b> pages the zero frame, <b>paged</b> pages are on swap. The figure after each bar is their sum.',
      true,
    ),
  ].join('');

  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(`pagevisor report: ${report.scenario}`)}</title>`,
    `<style>${STYLE}</style>`,
    '</head><body>',
    `<header><h1>pagevisor report: scenario <q>${escapeHtml(report.scenario)}</q></h1><p class="meta">${escapeHtml(meta)}</p><div class="cards">${cards}</div></header>`,
    alert,
    `<main class="grid-2">${charts}</main>`,
    `<footer>pagevisor ${escapeHtml(report.pagevisor)} · ${report.timeline.length} samples every ${escapeHtml(String(c.sampleIntervalS))} s of simulated time · the figures depend only on the scenario, its seed and the strategy</footer>`,
    '</body></html>',
    '',
  ].join('\n');
}

/**
 * Writes {@link renderHtmlReport}'s page of `report` to `path` (replacing it).
 * @throws Error naming `path` when the file cannot be written.
 */
export async function writeHtmlReport(report: Report, path: string): Promise<void> {
  const html = renderHtmlReport(report);
  try {
    await writeFile(path, html);
  } catch (e) {
    throw new Error(`cannot write HTML report to ${path}: ${(e as Error).message}`, { cause: e });
  }
}
