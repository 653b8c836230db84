import { loadavg, release } from 'node:os';
import { benchKsmd, KSMD_PHASES, KSMD_WORKLOADS, type KsmdBenchOptions, type KsmdPhase, type KsmdWorkload } from '../ksmd-bench.js';
import { measurement, median, type Measurement } from '../measurement.js';
import type { SuiteContext, SuiteResult } from '../suite-context.js';

/** Ids of the ksmd suite's measurements per phase: pagevisor's (carrying its ratio to ksmd's) and the kernel's. */
export const KSMD_ID: Readonly<Record<KsmdPhase, { readonly pagevisor: string; readonly kernel: string }>> = Object.fromEntries(
  KSMD_PHASES.map((p) => [p, { pagevisor: `ksmd.${p}.pagevisor`, kernel: `ksmd.${p}.kernel` }]),
) as Record<KsmdPhase, { pagevisor: string; kernel: string }>;

/** Ids of the ESX rows per page set: pagevisor's ESX scanner (carrying its ratio to ksmd's) and ksmd's first two full scans. */
export const ESX_KSMD_ID: Readonly<Record<KsmdWorkload, { readonly pagevisor: string; readonly kernel: string }>> = Object.fromEntries(
  KSMD_WORKLOADS.map((w) => [w, { pagevisor: `ksmd.esx-${w}.pagevisor`, kernel: `ksmd.esx-${w}.kernel` }]),
) as Record<KsmdWorkload, { pagevisor: string; kernel: string }>;

/** What ESX and ksmd do with each page set, in a few words (measurement and target names). */
export const ESX_KSMD_NAMES: Readonly<Record<KsmdWorkload, { readonly esx: string; readonly ksmd: string }>> = {
  distinct: { esx: 'ESX scan of distinct pages (hash, hint)', ksmd: 'first two full scans of distinct pages (checksum, unstable tree)' },
  identical: { esx: 'ESX scan of identical pages (hash, hint, merge)', ksmd: 'first two full scans of identical pages (checksum, merge)' },
};

/** Each phase in a few words (measurement and target names). */
export const KSMD_PHASE_NAMES: Readonly<Record<KsmdPhase, string>> = {
  checksum: 'checksum scan',
  unstable: 'unstable-tree scan',
  merge: 'merge scan',
  merged: 'all-merged scan',
};

/** What each phase's full scan does. */
const PHASE_WHAT: Readonly<Record<KsmdPhase, string>> = {
  checksum: 'first full scan of distinct pages: every page checksummed, nothing merges',
  unstable: 'second full scan of distinct pages: every page into the unstable tree',
  merge: 'second full scan of identical pages: every page merged into the stable tree',
  merged: 'third full scan of identical pages: every page already on its KSM page',
};

/** What ksmd's schedstat said of its timed scans, as a sentence (empty without it). */
function timeText(t: { scanMs: number; runMs: number; waitMs: number } | undefined): string {
  if (t === undefined) return '';
  const ms = (x: number): string => Math.round(x).toLocaleString('en-US');
  return ` Over the timed kernel runs, ${ms(t.scanMs)} ms of full scans: ksmd ${ms(t.runMs)} ms on a CPU and ${ms(t.waitMs)} ms waiting for one (its /proc schedstat).`;
}

/** Pages of each workload: 65,536 (quick: 4,096). */
export function ksmdPages(quick: boolean): number {
  return quick ? 4096 : 65536;
}

/** Name of the ratio the pagevisor figures carry (their `limit`). */
export const KSMD_LIMIT_NAME = 'ksmd (paired)';

/**
 * pagevisor's KSM scanner against the host's own ksmd, phase by phase, on the same pages with the
 * same knobs (see `benchKsmd`): per phase pagevisor's pages/s, carrying its ratio to ksmd's
 * (the median of per-repeat ratios, each pair timed side by side), and ksmd's pages/s. When the
 * host cannot run ksmd, only pagevisor's figures, each with a note saying why (the targets then
 * read no ratio and stay unmeasured). `opts` replaces parts of the bench (tests).
 */
export async function runKsmd(ctx: SuiteContext, opts: Partial<KsmdBenchOptions> = {}): Promise<SuiteResult> {
  const pages = opts.pages ?? ksmdPages(ctx.quick);
  const load0 = loadavg()[0]!;
  ctx.log(`ksmd: ${pages} pages, pagevisor's KSM scanner against this host's ksmd`);
  const r = await benchKsmd({ log: ctx.log, ...opts, pages, repeats: ctx.repeats });
  const load1 = loadavg()[0]!;
  const skipped = r.kernel === null ? `ksmd not measured: ${r.unavailable ?? 'unknown reason'}` : undefined;
  const out: Measurement[] = [];
  for (const p of KSMD_PHASES) {
    const spec = { suite: 'ksmd', group: p, unit: 'pages/s', better: 'higher' } as const;
    const mine = measurement({ ...spec, key: 'pagevisor', name: `${KSMD_PHASE_NAMES[p]}: pagevisor (KsmDedup)`, samples: r.pagevisor[p], ...(skipped === undefined ? {} : { note: skipped }) });
    if (r.kernel === null || r.ratios === null) {
      out.push(mine);
      continue;
    }
    const theirs = measurement({ ...spec, key: 'kernel', name: `${KSMD_PHASE_NAMES[p]}: ksmd (this host's kernel)`, samples: r.kernel[p] });
    out.push({ ...mine, limit: { id: theirs.id, name: KSMD_LIMIT_NAME, ratio: median(r.ratios[p]) } }, theirs);
  }
  for (const w of KSMD_WORKLOADS) {
    const e = r.esx[w];
    const spec = { suite: 'ksmd', group: `esx-${w}`, unit: 'pages/s', better: 'higher' } as const;
    const mine = measurement({ ...spec, key: 'pagevisor', name: `${ESX_KSMD_NAMES[w].esx}: pagevisor (EsxDedup)`, samples: e.pagevisor, ...(skipped === undefined ? {} : { note: skipped }) });
    if (e.kernel === null || e.ratios === null) {
      out.push(mine);
      continue;
    }
    const theirs = measurement({ ...spec, key: 'kernel', name: `${ESX_KSMD_NAMES[w].ksmd}: ksmd (this host's kernel)`, samples: e.kernel });
    out.push({ ...mine, limit: { id: theirs.id, name: KSMD_LIMIT_NAME, ratio: median(e.ratios) } }, theirs);
  }
  const knobs = `pages_to_scan ${r.knobs['pages_to_scan']}, sleep_millisecs ${r.knobs['sleep_millisecs']}, smart_scan ${r.knobs['smart_scan']} (the rest at Linux's defaults: max_page_sharing ${r.knobs['max_page_sharing']}, use_zero_pages ${r.knobs['use_zero_pages']}, merge_across_nodes ${r.knobs['merge_across_nodes']})`;
  const notes = [
    `${pages} pages in one guest, with the same knobs on both sides: ${knobs}, so one wake-up is one full scan. Phases: ${KSMD_PHASES.map((p) => `${p} (${PHASE_WHAT[p]})`).join('; ')}. Distinct pages: one random page with its first word set to the page's index; identical pages: that random page, ${Math.ceil(pages / r.knobs['max_page_sharing']!)} KSM pages of max_page_sharing mappings once merged.`,
    `ESX rows: pagevisor's ESX-style scanner (EsxDedup: random candidates, each hashed, its hint looked up, compared and merged, or a hint left) on the same pages, one fresh Hypervisor per repeat and page set timed beside the KSM one, two wake-ups of ${pages} random candidates; set beside ksmd's first two full scans of the same pages (2 x ${pages} pages scanned too: checksum then unstable tree for distinct pages, checksum then merge for identical ones), pages/s = 2 x pages / their wall time.`,
    `Per repeat and page set: one run of tools/ksm-replay (a process holding the pages, madvised MERGEABLE; ksmd's wall time of each full scan from the replayer, polled every 50 us, ksmd kept stopped for sleep_millisecs + 30 ms before each so that none of its sleep is counted) and one fresh Hypervisor with a KsmDedup (performance.now() around the wake-up of each full scan), the two in turn, which goes first alternating by repeat, after an untimed replayer run and an untimed warm-up of pagevisor's side (whole rounds of both page sets, at least 65,536 pages). pages/s = pages / wall time of the scan; the ratios are medians of per-repeat ratios. After every scan the counters are checked on both sides (full_scans, pages_scanned, pages_shared, pages_sharing, pages_unshared, pages_volatile, stable_node_chains/dups, the guest's rmap items and merging pages; the kernel's from the replayer's checkpoints) and the hypervisor is audited.`,
    skipped === undefined
      ? `ksmd: Linux ${release()} (ksmd runs at nice 5, its default; the bench runs at the nice it was started with)${r.retries > 0 ? `; ${r.retries} kernel run${r.retries === 1 ? '' : 's'} retried while KSM was in use elsewhere` : ''}. Load average (1 min) ${load0.toFixed(2)} at the start, ${load1.toFixed(2)} at the end.${timeText(r.ksmdTime)}`
      : `${skipped}. The ratios and their targets are unmeasured.`,
  ];
  return {
    suite: 'ksmd',
    measurements: out,
    notes,
    details: {
      pages,
      knobs: r.knobs,
      kernel: release(),
      ksmd: r.kernel === null ? { measured: false, reason: r.unavailable ?? null } : { measured: true, retries: r.retries, ...(r.ksmdTime === undefined ? {} : { time: r.ksmdTime }) },
      loadAverage: { start: load0, end: load1 },
    },
  };
}
