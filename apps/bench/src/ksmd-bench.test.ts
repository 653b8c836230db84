import { describe, expect, it } from 'vitest';
import { HostUnavailable } from '@pagevisor/simulator';
import { PAGE_SIZE } from '@pagevisor/types';
import {
  benchKsmd,
  esxScans,
  expectedCounters,
  kernelScript,
  KSMD_PHASES,
  KSMD_WORKLOADS,
  ksmdKnobs,
  ksmdSchedCounters,
  pagevisorScans,
  ScanPages,
  WORKLOAD_SCANS,
  type KernelRun,
  type KsmdWorkload,
  type ReplayFn,
} from './ksmd-bench.js';
import { median } from './measurement.js';
import type { SuiteContext } from './suite-context.js';
import { ESX_KSMD_ID, KSMD_ID, KSMD_LIMIT_NAME, runKsmd } from './suites/ksmd.js';
import { evaluateTargets } from './targets.js';

// Never the real KSM here: the kernel's side is a fake replayer that answers a script the way
// ksm-replay does (its counters from what a correct scan leaves), or a host that cannot serve.
// No timed assertions: only shapes, the checks, the skip path and the ratio/target plumbing.

const PAGES = 600; // 3 KSM pages of identical content (256 + 256 + 88 mappings): a chain
const REPLAYER = '/fake/ksm-replay';
const noSleep = (): Promise<void> => Promise.resolve();

/** A fake replayer: scans take `msOf(label)` ms; `tamper` may spoil a checkpoint's counters. */
function fakeKernel(opts: { msOf?: (label: string, call: number) => number; tamper?: (label: string, global: Record<string, number>) => void } = {}): { replay: ReplayFn; calls: KsmdWorkload[] } {
  const calls: KsmdWorkload[] = [];
  const replay: ReplayFn = (script, replayer): KernelRun => {
    expect(replayer).toBe(REPLAYER);
    const text = Buffer.from(script).toString('latin1');
    const labels = [...text.matchAll(/^checkpoint (\S+)$/gm)].map((m) => m[1]!);
    const pages = Number(/^guests 1 (\d+)$/m.exec(text)![1]);
    const mps = Number(/^knob max_page_sharing (\d+)$/m.exec(text)![1]);
    const workload: KsmdWorkload = labels.includes('merge') ? 'identical' : 'distinct';
    calls.push(workload);
    const scans = WORKLOAD_SCANS[workload];
    expect(labels).toEqual(scans.map((s) => s.label));
    return {
      results: [{ op: 'guests', ok: true }, { op: 'data', ok: true }, ...scans.map((s) => ({ op: 'wait_full_scans', ok: true, ms: opts.msOf?.(s.label, calls.length) ?? 10 }))],
      checkpoints: scans.map((s, k) => {
        const want = expectedCounters(s.state, k + 1, pages, mps);
        const global = { ...want.global, general_profit: 1, max_page_sharing: mps };
        opts.tamper?.(s.label, global);
        return { checkpoint: s.label, global, guests: [{ ksm_rmap_items: want.guest.rmap_items, ksm_merging_pages: want.guest.merging_pages, ksm_zero_pages: 0 }] };
      }),
    };
  };
  return { replay, calls };
}

function unavailable(message: string): () => never {
  return () => {
    throw new HostUnavailable(message);
  };
}

describe('kernelScript', () => {
  it('writes the same pages as pagevisor, with every knob, a pause before each full scan and a checkpoint after', () => {
    const pages = 300;
    const contents = new ScanPages();
    const knobs = { pages_to_scan: 600, sleep_millisecs: 20, max_page_sharing: 256, use_zero_pages: 0, merge_across_nodes: 1, smart_scan: 0, run: 1, stable_node_chains_prune_millisecs: 2000 };
    for (const w of KSMD_WORKLOADS) {
      const script = Buffer.from(kernelScript(w, pages, knobs, contents));
      const dataLine = Buffer.from(`data 0 0 ${pages}\n`);
      const at = script.indexOf(dataLine);
      const head = script.subarray(0, at).toString('utf8').split('\n').filter((l) => l !== '');
      expect(head).toEqual(['knob advisor_mode none', ...Object.entries(knobs).map(([k, v]) => `knob ${k} ${v}`), `guests 1 ${pages}`]);
      const data = script.subarray(at + dataLine.length, at + dataLine.length + pages * PAGE_SIZE);
      for (const i of [0, 1, 137, pages - 1]) expect(Buffer.compare(data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), Buffer.from(contents.at(w, i)))).toBe(0);
      const tail = script.subarray(at + dataLine.length + pages * PAGE_SIZE).toString('utf8').split('\n').filter((l) => l !== '');
      expect(tail).toEqual([
        `madvise 0 0 ${pages} 12`,
        ...WORKLOAD_SCANS[w].flatMap((s) => ['set run 0', 'wait 50', 'set run 1', 'wait_full_scans 1 60000', `checkpoint ${s.label}`]),
        'end',
      ]);
    }
  });

  it('makes distinct pages distinct and identical pages identical', () => {
    const c = new ScanPages();
    const a = c.at('distinct', 1).slice();
    const b = c.at('distinct', 2).slice();
    expect(Buffer.compare(a, b)).not.toBe(0);
    expect(Buffer.compare(a.subarray(4), b.subarray(4))).toBe(0);
    expect(Buffer.compare(c.at('identical', 1).slice(), c.at('identical', 2))).toBe(0);
  });

  it('runs both sides with pages_to_scan above the page count, smart_scan 0 and sleep_millisecs 20', () => {
    expect(ksmdKnobs(4096)).toEqual({ pages_to_scan: 8192, smart_scan: 0, sleep_millisecs: 20 });
  });
});

describe('expectedCounters', () => {
  it('counts KSM pages of max_page_sharing mappings, chained once there are two', () => {
    expect(expectedCounters('merged', 2, 600, 256).global).toMatchObject({ pages_shared: 3, pages_sharing: 597, stable_node_chains: 1, stable_node_dups: 3, pages_unshared: 0, pages_volatile: 0, pages_scanned: 1200 });
    expect(expectedCounters('merged', 3, 200, 256).global).toMatchObject({ pages_shared: 1, pages_sharing: 199, stable_node_chains: 0, stable_node_dups: 0, full_scans: 3 });
    expect(expectedCounters('unstable', 2, 600, 256)).toMatchObject({ global: { pages_unshared: 600, pages_shared: 0 }, guest: { rmap_items: 600, merging_pages: 0 } });
    expect(expectedCounters('checksummed', 1, 600, 256).global).toMatchObject({ pages_volatile: 600, pages_unshared: 0 });
  });
});

describe('pagevisorScans', () => {
  it('scans each workload once per wake-up, leaving what the kernel would (it checks and audits itself)', async () => {
    const contents = new ScanPages();
    for (const pages of [PAGES, 200]) {
      for (const w of KSMD_WORKLOADS) {
        const ms = await pagevisorScans(w, pages, ksmdKnobs(pages), contents);
        expect(ms).toHaveLength(WORKLOAD_SCANS[w].length);
        for (const x of ms) expect(Number.isFinite(x) && x >= 0).toBe(true);
      }
    }
  });

  it('throws when one wake-up is not one full scan', async () => {
    await expect(pagevisorScans('distinct', PAGES, { ...ksmdKnobs(PAGES), pages_to_scan: PAGES / 2 }, new ScanPages())).rejects.toThrow(/did not make exactly one full scan/);
  });
});

describe('benchKsmd', () => {
  it('pairs each phase of pagevisor with the kernel, alternating which goes first', async () => {
    const kernel = fakeKernel({ msOf: (label, call) => (label === 'merged' ? 2 : 10 * call) });
    const log: string[] = [];
    let reads = 0;
    const schedCounters = () => (++reads, { runNs: reads * 1e6, waitNs: reads * 5e5 });
    const r = await benchKsmd({ pages: PAGES, warmupPages: 0, repeats: 3, replayer: () => REPLAYER, replay: kernel.replay, log: (l) => log.push(l), schedCounters });
    // An untimed run first, then one run of each page set per repeat.
    expect(kernel.calls).toEqual(['distinct', 'distinct', 'identical', 'distinct', 'identical', 'distinct', 'identical']);
    expect(log.filter((l) => /repeat \d of 3/.test(l)).map((l) => /\((.*)\)/.exec(l)![1])).toEqual(['ksmd first', 'pagevisor first', 'ksmd first']);
    expect(r.unavailable).toBeUndefined();
    expect(r.knobs).toMatchObject({ pages_to_scan: 2 * PAGES, smart_scan: 0, sleep_millisecs: 20, max_page_sharing: 256 });
    // Timed distinct runs are calls 2, 4, 6; identical 3, 5, 7.
    expect(r.kernel!.checksum).toEqual([2, 4, 6].map((c) => PAGES / (10 * c / 1000)));
    expect(r.kernel!.unstable).toEqual(r.kernel!.checksum);
    expect(r.kernel!.merge).toEqual([3, 5, 7].map((c) => PAGES / (10 * c / 1000)));
    expect(r.kernel!.merged).toEqual([PAGES / 0.002, PAGES / 0.002, PAGES / 0.002]);
    for (const p of KSMD_PHASES) {
      expect(r.pagevisor[p]).toHaveLength(3);
      expect(r.ratios![p]).toEqual(r.pagevisor[p].map((x, i) => x / r.kernel![p][i]!));
    }
    // Read around each of the 6 timed runs (not the untimed one): 1 ms on a CPU and 0.5 ms
    // waiting each; the scans' wall time is every scan of those runs, checked or reported.
    expect(reads).toBe(12);
    const scanMs = [2, 4, 6].reduce((a, c) => a + 2 * 10 * c, 0) + [3, 5, 7].reduce((a, c) => a + 2 * 10 * c + 2, 0);
    expect(r.ksmdTime).toEqual({ scanMs, runMs: 6, waitMs: 3 });
    const blind = await benchKsmd({ pages: PAGES, warmupPages: 0, repeats: 1, replayer: () => REPLAYER, replay: fakeKernel().replay, schedCounters: () => null });
    expect(blind.ksmdTime).toBeUndefined();
  });

  it('reads ksmd\'s scheduler counters when the host has a ksmd thread (read only)', () => {
    const c = ksmdSchedCounters();
    if (c !== null) expect(c.runNs >= 0 && c.waitNs >= 0).toBe(true);
  });

  it('measures pagevisor alone, with the reason, when the host cannot build or run the replayer', async () => {
    const r = await benchKsmd({ pages: PAGES, warmupPages: 0, repeats: 2, replayer: unavailable('cannot build the replayer: spawnSync cc ENOENT (install a C compiler, e.g. apt-get install gcc)'), replay: () => expect.unreachable() });
    expect(r).toMatchObject({ kernel: null, ratios: null, unavailable: expect.stringMatching(/^cannot build the replayer/) });
    for (const p of KSMD_PHASES) expect(r.pagevisor[p]).toHaveLength(2);

    let sleeps = 0;
    const denied = await benchKsmd({ pages: PAGES, warmupPages: 0, repeats: 1, replayer: () => REPLAYER, replay: unavailable('no permission: ksm-replay: no permission to write /sys/kernel/mm/ksm/run (run as root)'), sleep: () => Promise.resolve(void sleeps++) });
    expect(denied).toMatchObject({ kernel: null, unavailable: expect.stringMatching(/^no permission/), retries: 0 });
    expect(sleeps).toBe(0);
  });

  it('retries while KSM is in use elsewhere, then gives up on the kernel', async () => {
    const ok = fakeKernel();
    let busy = 2;
    const waits: number[] = [];
    const r = await benchKsmd({
      pages: PAGES,
      warmupPages: 0,
      repeats: 1,
      replayer: () => REPLAYER,
      replay: (s, p) => (busy-- > 0 ? unavailable('KSM in use: ksm-replay: another process has KSM memory')() : ok.replay(s, p)),
      retryDelayMs: 1234,
      sleep: (ms) => Promise.resolve(void waits.push(ms)),
    });
    expect(r.retries).toBe(2);
    expect(waits).toEqual([1234, 1234]);
    expect(r.kernel).not.toBeNull();

    const never = await benchKsmd({ pages: PAGES, warmupPages: 0, repeats: 2, replayer: () => REPLAYER, replay: unavailable('KSM in use: ksm-replay: process 7 has mergeable memory'), attempts: 3, sleep: noSleep });
    expect(never).toMatchObject({ kernel: null, ratios: null, retries: 2, unavailable: expect.stringMatching(/^KSM in use/) });
  });

  it('drops the kernel figures, saying when, if the host stops serving part way', async () => {
    const ok = fakeKernel();
    let runs = 0;
    // The untimed run, then repeat 1's two: repeat 2's first run finds KSM in use.
    const r = await benchKsmd({ pages: PAGES, warmupPages: 0, repeats: 2, replayer: () => REPLAYER, replay: (s, p) => (++runs > 3 ? unavailable('KSM in use: busy')() : ok.replay(s, p)), attempts: 1, sleep: noSleep });
    expect(runs).toBe(4);
    expect(r).toMatchObject({ kernel: null, ratios: null, unavailable: 'KSM in use: busy (at repeat 2 of 2; the kernel figures taken before are dropped)' });
  });

  it('throws when the kernel scanned wrongly, a command failed, or the replayer failed otherwise', async () => {
    const wrong = fakeKernel({ tamper: (label, g) => void (label === 'merge' && (g['pages_sharing'] = 596)) });
    await expect(benchKsmd({ pages: PAGES, warmupPages: 0, repeats: 1, replayer: () => REPLAYER, replay: wrong.replay })).rejects.toThrow(/kernel, after the merge scan \(identical pages\): pages_sharing 596, expected 597/);
    const failed: ReplayFn = (s, p) => {
      const run = fakeKernel().replay(s, p);
      return { ...run, results: [...run.results.slice(0, -1), { op: 'wait_full_scans', ok: false, errno: 110, error: 'ETIMEDOUT' }] };
    };
    await expect(benchKsmd({ pages: PAGES, warmupPages: 0, repeats: 1, replayer: () => REPLAYER, replay: failed })).rejects.toThrow(/wait_full_scans failed \(ETIMEDOUT\)/);
    const broken: ReplayFn = () => {
      throw new Error('the replayer exited 1: ksm-replay: a guest could not map its memory');
    };
    await expect(benchKsmd({ pages: PAGES, warmupPages: 0, repeats: 1, replayer: () => REPLAYER, replay: broken })).rejects.toThrow(/exited 1/);
  });

  it('refuses sizes that cannot merge every page, and no repeats', async () => {
    await expect(benchKsmd({ pages: 257, repeats: 1, replayer: unavailable('x') })).rejects.toThrow(RangeError);
    await expect(benchKsmd({ pages: 1, repeats: 1, replayer: unavailable('x') })).rejects.toThrow(RangeError);
    await expect(benchKsmd({ pages: PAGES, warmupPages: 0, repeats: 0, replayer: unavailable('x') })).rejects.toThrow(RangeError);
  });
});

describe('esxScans', () => {
  it('draws 2 x pages candidates in two wake-ups: distinct pages merge none, identical pages merge, the audit clean', async () => {
    const contents = new ScanPages();
    for (const w of KSMD_WORKLOADS) expect(await esxScans(w, 512, contents)).toBeGreaterThan(0);
  });
});

describe('the ksmd suite and its targets', () => {
  const ctx: SuiteContext = { quick: true, repeats: 2, log: () => {}, limits: new Map() };

  it('reports both sides per phase, pagevisor carrying its paired ratio, and judges the targets on it', async () => {
    // ksmd takes 1 ms a scan: every pagevisor scan of 600 pages is slower, every target missed.
    const kernel = fakeKernel({ msOf: () => 1e-3 });
    const r = await runKsmd(ctx, { pages: PAGES, warmupPages: 0, replayer: () => REPLAYER, replay: kernel.replay });
    expect(r.suite).toBe('ksmd');
    expect(r.measurements.map((m) => m.id)).toEqual([
      ...KSMD_PHASES.flatMap((p) => [KSMD_ID[p].pagevisor, KSMD_ID[p].kernel]),
      ...KSMD_WORKLOADS.flatMap((w) => [ESX_KSMD_ID[w].pagevisor, ESX_KSMD_ID[w].kernel]),
    ]);
    for (const p of KSMD_PHASES) {
      const mine = r.measurements.find((m) => m.id === KSMD_ID[p].pagevisor)!;
      const theirs = r.measurements.find((m) => m.id === KSMD_ID[p].kernel)!;
      expect(theirs.samples).toEqual([PAGES * 1e6, PAGES * 1e6]);
      expect(mine.limit).toEqual({ id: theirs.id, name: KSMD_LIMIT_NAME, ratio: median(mine.samples.map((x) => x / (PAGES * 1e6))) });
      expect(mine.note).toBeUndefined();
    }
    // ESX beside ksmd's first two full scans of the same pages: 2 x 1 ms for 2 x PAGES pages.
    for (const w of KSMD_WORKLOADS) {
      const mine = r.measurements.find((m) => m.id === ESX_KSMD_ID[w].pagevisor)!;
      const theirs = r.measurements.find((m) => m.id === ESX_KSMD_ID[w].kernel)!;
      expect(theirs.samples).toEqual([PAGES * 1e6, PAGES * 1e6]);
      expect(mine.samples.every((x) => x > 0 && x < PAGES * 1e6)).toBe(true);
      expect(mine.limit).toEqual({ id: theirs.id, name: KSMD_LIMIT_NAME, ratio: median(mine.samples.map((x) => x / (PAGES * 1e6))) });
    }
    expect(r.details).toMatchObject({ pages: PAGES, ksmd: { measured: true, retries: 0 } });
    const targets = evaluateTargets(r.measurements, false).filter((t) => t.key.startsWith('ksmd-'));
    expect(targets.map((t) => t.key)).toEqual([...KSMD_PHASES.map((p) => `ksmd-${p}`), ...KSMD_WORKLOADS.map((w) => `ksmd-esx-${w}`)]);
    for (const t of targets) {
      const m = r.measurements.find((x) => x.id === t.source)!;
      expect(t).toMatchObject({ op: '>=', threshold: 1, unit: 'x ksmd', value: m.limit!.ratio, met: false });
    }
  });

  it('without a host for ksmd: pagevisor figures only, each noting why, and the targets unmeasured', async () => {
    const why = 'no KSM: ksm-replay: this host has no KSM (/sys/kernel/mm/ksm/ is missing)';
    const r = await runKsmd(ctx, { pages: PAGES, warmupPages: 0, replayer: unavailable(why) });
    expect(r.measurements.map((m) => m.id)).toEqual([...KSMD_PHASES.map((p) => KSMD_ID[p].pagevisor), ...KSMD_WORKLOADS.map((w) => ESX_KSMD_ID[w].pagevisor)]);
    for (const m of r.measurements) {
      expect(m.limit).toBeUndefined();
      expect(m.note).toBe(`ksmd not measured: ${why}`);
    }
    expect(r.notes.at(-1)).toBe(`ksmd not measured: ${why}. The ratios and their targets are unmeasured.`);
    expect(r.details).toMatchObject({ ksmd: { measured: false, reason: why } });
    for (const t of evaluateTargets(r.measurements, false).filter((x) => x.key.startsWith('ksmd-'))) {
      expect(t).toMatchObject({ value: null, met: null, source: null, note: `ksmd not measured: ${why}` });
    }
  });
});
