import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NS_PER_S } from '@pagevisor/types';
import { parseScenario } from '@pagevisor/workloads';
import { escapeHtml, MAX_DRAWN_SAMPLES, niceTicks, rateAxisMax, renderHtmlReport, tickFormat, writeHtmlReport } from './html-report.js';
import type { Report, TimelineSample } from './report.js';
import { runScenario } from './run-scenario.js';
import { tinySwapScenario } from '../tests/tiny-swap.js';

const HOSTILE = `<img src=x onerror="alert(1)"> & 'co'`;

/** Three guests at 1.5x RAM with a shared swap area, under a name and guest name that need escaping. */
const TINY_SWAP = tinySwapScenario(`tiny ${HOSTILE}`, '<b>vm</b>');

let report: Report;
let html: string;
let dir: string;
beforeAll(async () => {
  report = await runScenario(parseScenario(TINY_SWAP));
  html = renderHtmlReport(report);
  dir = await mkdtemp(join(tmpdir(), 'pagevisor-html-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The SVG of chart `id`. */
function chart(page: string, id: string): string {
  const m = new RegExp(`<svg class="chart" data-chart="${id}"[^]*?</svg>`).exec(page);
  expect(m, `chart ${id}`).not.toBeNull();
  return m![0];
}

describe('renderHtmlReport', () => {
  it('is one self-contained page: no script, no external resource', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    const tags = html.match(/<[a-z][^>]*>/gi) ?? [];
    expect(tags.length).toBeGreaterThan(100);
    expect(tags.filter((t) => /^<(script|link|img|iframe|object|embed|image|use)\b|\s(src|href|xlink:href)=/i.test(t))).toEqual([]);
    expect(html).not.toMatch(/url\(|@import|https?:/i);
  });

  it('draws the five charts in order, each with data', () => {
    const ids = [...html.matchAll(/<svg class="chart" data-chart="([a-z-]+)"/g)].map((m) => m[1]);
    expect(ids).toEqual(['frames', 'swap', 'faults', 'swap-rates', 'domains']);
    for (const id of ['frames', 'swap', 'faults', 'swap-rates']) {
      const paths = [...chart(html, id).matchAll(/<path d="([^"]*)"/g)].map((m) => m[1]!);
      expect(paths.length, id).toBeGreaterThan(0);
      expect(paths.every((d) => /^M[\d.]+ [\d.]+/.test(d)), id).toBe(true);
    }
    // One bar per domain and non-empty part: private, shared, zero, paged.
    const bars = chart(html, 'domains').match(/<rect class="bar"/g) ?? [];
    expect(bars.length).toBe(report.domains.reduce((n, d) => n + [d.privatePages, d.sharedPages, d.zeroPages, d.pagedPages].filter((v) => v > 0).length, 0));
    expect(report.domains.every((d) => d.pagedPages > 0)).toBe(true);
  });

  it('stacks the frame states to the RAM size at every sample', () => {
    const svg = chart(html, 'frames');
    const areas = [...svg.matchAll(/<path d="([^"]*)Z" fill/g)].map((m) => m[1]!);
    expect(areas.length).toBe(4);
    // The free layer's upper edge is the top of the stack: RAM, a flat line at one y.
    const points = [...areas[3]!.matchAll(/[ML]([\d.]+) ([\d.]+)/g)];
    expect(points.length).toBe(2 * report.timeline.length);
    expect(new Set(points.slice(0, report.timeline.length).map((m) => m[2])).size).toBe(1);
    expect(svg).toContain('>private<');
    expect(svg).toContain('>free<');
    expect(svg).toContain('simulated time (s)');
    expect(svg).toContain('machine frames (4 KiB each)');
  });

  it('shows the scenario, strategy and headline figures at the top', () => {
    const header = /<header>[^]*<\/header>/.exec(html)![0];
    expect(header).toContain(`${report.totals.savedPct.toFixed(2)}%`);
    expect(header).toContain('strategy inline');
    expect(header).toContain(`seed ${report.seed}`);
    expect(header).toContain('frames used');
    expect(header).toContain(`>${String(report.totals.machineFramesUsed).replace(/\B(?=(\d{3})+(?!\d))/g, '\u2009')}<`);
    expect(header).toContain('swap: shared, memory device');
  });

  it('escapes every string from the report', () => {
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>vm');
    expect(html).toContain(escapeHtml(`pagevisor report: tiny ${HOSTILE}`));
    expect(html).toContain(escapeHtml('<b>vm</b>-0'));
    const failed = renderHtmlReport({
      ...report,
      failures: [{ guest: '<i>g</i>', domId: 1, op: 'populate_physmap', errno: 'ENOMEM', message: 'no <frames> & "more"', atNs: NS_PER_S }],
    });
    expect(failed).toContain('class="alert"');
    expect(failed).toContain(escapeHtml('<i>g</i> (dom 1) failed at 1.00 s: ENOMEM in populate_physmap: no <frames> & "more"'));
    expect(failed).not.toContain('<i>');
  });

  it('gives the same page for two runs of one scenario (wall time is left out)', async () => {
    const again = await runScenario(parseScenario(TINY_SWAP));
    expect(renderHtmlReport(again)).toBe(html);
  });

  it('says so when the machine has no swap', async () => {
    const { swap: _swap, ...machine } = TINY_SWAP.machine;
    const r = await runScenario(parseScenario({ ...TINY_SWAP, machine: { ...machine, memoryMiB: 32 } }));
    const page = renderHtmlReport(r);
    expect(chart(page, 'swap')).toContain('no swap on this machine');
    expect(chart(page, 'swap-rates')).toContain('no swap on this machine');
    expect(page).toContain('no swap ·');
  });

  it(`draws at most ${MAX_DRAWN_SAMPLES} samples of a long timeline and says so`, () => {
    const base = report.timeline.at(-1)!;
    const timeline: TimelineSample[] = Array.from({ length: 4000 }, (_, i) => ({ ...base, tNs: i * 1e6, cowFaults: i }));
    const page = renderHtmlReport({ ...report, timeline, simulatedNs: 3999 * 1e6 });
    expect(page).toContain('One sample in 3 of the 4000 is drawn');
    const guestLine = /<path d="([^"]*)" fill="none" stroke="#333333"/.exec(chart(page, 'frames'))![1]!;
    expect(guestLine.split('L').length).toBe(1334);
    // 3 samples of 1 ms apart drawn: 3 faults over 3 ms.
    expect(chart(page, 'faults')).toContain('>1000<');
  });
});

describe('chart helpers', () => {
  it('niceTicks: 1-2-2.5-5 steps from 0 up to a tick at or above the max', () => {
    expect(niceTicks(131072)).toEqual({ top: 150000, ticks: [0, 50000, 100000, 150000] });
    expect(niceTicks(100)).toEqual({ top: 100, ticks: [0, 20, 40, 60, 80, 100] });
    expect(niceTicks(0.7).ticks).toEqual([0, 0.2, 0.4, 0.6, 0.8]);
    expect(niceTicks(0)).toEqual({ top: 1, ticks: [0, 0.2, 0.4, 0.6, 0.8, 1] });
    expect(niceTicks(Number.NaN).top).toBe(1);
  });

  it('tickFormat: one unit per axis', () => {
    expect([0, 5000, 10000].map(tickFormat(10000))).toEqual(['0', '5k', '10k']);
    expect([2500, 7500].map(tickFormat(7500))).toEqual(['2500', '7500']);
    expect([0, 5e6, 1e7].map(tickFormat(1e7))).toEqual(['0', '5M', '10M']);
    expect(tickFormat(1)(0.30000000000000004)).toBe('0.3');
  });

  it('rateAxisMax: cuts a few intervals that dwarf the rest, never a steady series', () => {
    expect(rateAxisMax([75000, 270, 260, 280, 250, 265, 270, 240, 275, 255, 260])).toEqual({ max: 420, clipped: true });
    expect(rateAxisMax([100, 300, 200, 250])).toEqual({ max: 300, clipped: false });
    expect(rateAxisMax([0, 0, 5000, 0])).toEqual({ max: 5000, clipped: false });
    expect(rateAxisMax([])).toEqual({ max: 0, clipped: false });
  });

  it('escapeHtml escapes markup and both quotes', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
  });
});

describe('writeHtmlReport', () => {
  it('writes the page to the file', async () => {
    const file = join(dir, 'report.html');
    await writeHtmlReport(report, file);
    expect(await readFile(file, 'utf8')).toBe(html);
  });

  it('throws an Error naming the path when the file cannot be written', async () => {
    const file = join(dir, 'missing-dir', 'report.html');
    await expect(writeHtmlReport(report, file)).rejects.toThrow(`cannot write HTML report to ${file}:`);
  });
});
