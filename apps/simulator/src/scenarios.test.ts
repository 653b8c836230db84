import { readdir, readFile } from 'node:fs/promises';
import { HashMapDedup } from '@pagevisor/dedup';
import { describe, expect, it } from 'vitest';
import { NS_PER_MS, NS_PER_S } from '@pagevisor/types';
import { parseScenario, scenarioJsonSchema, sweepJsonSchema, type Scenario } from '@pagevisor/workloads';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { fileURLToPath } from 'node:url';
import { loadSweep } from './sweep/sweep.js';
import type { CheckpointRecord, Report } from './report.js';
import { runScenario } from './run-scenario.js';

const dir = new URL('../scenarios/', import.meta.url);

async function load(name: string): Promise<Scenario> {
  return parseScenario(JSON.parse(await readFile(new URL(name, dir), 'utf8')));
}

function at(r: Report, label: string): CheckpointRecord {
  const cp = r.checkpoints.find((c) => c.label === label);
  if (cp === undefined) throw new Error(`no checkpoint ${label}`);
  return cp;
}

/** KSM's counters that ksm_tests.c checks, and the hypervisor's view of the same sharing. */
function sharing(cp: CheckpointRecord) {
  return {
    pages_shared: cp.dedup['pages_shared'],
    pages_sharing: cp.dedup['pages_sharing'],
    hvShared: cp.totals.pagesShared,
    hvSharing: cp.totals.pagesSharing,
  };
}

function withoutWall(r: Report): string {
  const { wall: _wall, ...rest } = r;
  return JSON.stringify(rest);
}

describe('the JSON Schema of scenario files', () => {
  const root = new URL('../../../', import.meta.url);
  const schemaFile = new URL('packages/workloads/scenario.schema.json', root);

  it('is the one the zod schema gives, and so is the sweep file\'s (npm run schema writes them)', async () => {
    expect(JSON.parse(await readFile(schemaFile, 'utf8'))).toEqual(scenarioJsonSchema());
    expect(JSON.parse(await readFile(new URL('packages/workloads/sweep.schema.json', root), 'utf8'))).toEqual(sweepJsonSchema());
  });

  it('every example scenario (and sweep) names its schema by $schema and passes it, and the zod schema alike; a bad one fails both', async () => {
    const validate = new Ajv2020({ strict: false, allErrors: true }).compile(JSON.parse(await readFile(schemaFile, 'utf8')));
    const examples = [
      ...(await readdir(dir)).filter((f) => f.endsWith('.json')).map((f) => new URL(f, dir)),
      ...['examples/2q-eviction', 'examples/bitmap-allocator', 'examples/hot-inline-dedup'].map((d) => new URL(`${d}/scenario.json`, root)),
      new URL('tools/capture-guests/swap-scenario.json', root),
    ];
    for (const file of examples) {
      const json = JSON.parse(await readFile(file, 'utf8')) as { $schema?: string };
      expect(new URL(json.$schema ?? '', file).href, file.pathname).toBe(schemaFile.href);
      expect(validate(json), `${file.pathname}: ${JSON.stringify(validate.errors)}`).toBe(true);
      expect(() => parseScenario(json)).not.toThrow();
    }
    const sweeps = new URL('../sweeps/', import.meta.url);
    const validateSweep = new Ajv2020({ strict: false, allErrors: true }).compile(JSON.parse(await readFile(new URL('packages/workloads/sweep.schema.json', root), 'utf8')));
    for (const f of (await readdir(sweeps)).filter((n) => n.endsWith('.json'))) {
      const file = new URL(f, sweeps);
      const json = JSON.parse(await readFile(file, 'utf8')) as { $schema?: string };
      expect(new URL(json.$schema ?? '', file).href).toBe(new URL('packages/workloads/sweep.schema.json', root).href);
      expect(validateSweep(json), `${f}: ${JSON.stringify(validateSweep.errors)}`).toBe(true);
      expect((await loadSweep(fileURLToPath(file))).jobs.length).toBeGreaterThan(0);
    }
    const bad = { ...JSON.parse(await readFile(new URL('ksm-merge.json', dir), 'utf8')), machine: { memoryMiB: 0 }, colour: 'blue' };
    expect(validate(bad)).toBe(false);
    expect(validate.errors!.map((e) => e.instancePath || e.params)).toEqual(expect.arrayContaining(['/machine/memoryMiB', { additionalProperty: 'colour' }]));
    expect(() => parseScenario(bad)).toThrow(/machine\.memoryMiB.*\n?.*|colour/);
  });
});

describe('scenario files', () => {
  it('all parse, the required ones among them', async () => {
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(expect.arrayContaining(['ksm-merge.json', 'static-compare.json']));
    for (const f of files) expect((await load(f)).name).toBe(f.replace(/\.json$/, ''));
  });
});

describe('KSM semantics, scenario by scenario (as tools/testing/selftests/mm/ksm_tests.c checks them)', () => {
  it('ksm-merge: 20 identical pages merge at the second full scan into 1 shared + 19 sharing; writes and unmerging undo it', async () => {
    const r = await runScenario(await load('ksm-merge.json'));
    expect(r.totals.failedSteps).toBe(0);
    expect(r.steps.every((s) => s.ok || s.expect === s.errno)).toBe(true);
    const none = { pages_shared: 0, pages_sharing: 0, hvShared: 0, hvSharing: 0 };
    expect(sharing(at(r, 'filled'))).toEqual(none);
    // Merging takes two full scans: nothing after the first.
    expect(at(r, 'first-scan').dedup['full_scans']).toBe(1);
    expect(sharing(at(r, 'first-scan'))).toEqual(none);
    const merged = at(r, 'merged');
    expect(merged.dedup['full_scans']).toBe(2);
    expect(sharing(merged)).toEqual({ pages_shared: 1, pages_sharing: 19, hvShared: 1, hvSharing: 19 });
    expect(merged.domains.map((d) => d['merging_pages'])).toEqual([10, 10]);
    // 20 pages of 2 guests on one frame: 19 frames saved.
    expect(at(r, 'filled').totals.machineFramesUsed - merged.totals.machineFramesUsed).toBe(19);
    // max_page_sharing cannot change while pages are shared.
    expect(r.steps[9]).toMatchObject({ op: 'set', ok: false, errno: 'EBUSY', failed: false });
    // One byte written in a page of each guest: copy-on-write, counters right after the next scan.
    expect(sharing(at(r, 'two-written'))).toEqual({ pages_shared: 1, pages_sharing: 17, hvShared: 1, hvSharing: 17 });
    expect(at(r, 'two-written').totals.cowFaults).toBe(2);
    // MADV_UNMERGEABLE on vm-1: its pages get copies; vm-0's 9 stay merged.
    const unmergeable = at(r, 'vm-1-unmergeable');
    expect(sharing(unmergeable)).toEqual({ pages_shared: 1, pages_sharing: 8, hvShared: 1, hvSharing: 8 });
    expect(unmergeable.domains.map((d) => d.sharedPages)).toEqual([9, 0]);
    // run = 2 unmerges everything: every counter 0, no two gfns on one frame.
    const unmerged = at(r, 'unmerged');
    expect(sharing(unmerged)).toEqual(none);
    expect(unmerged.knobs['run']).toBe(2);
    expect(unmerged.domains.map((d) => d.sharedPages)).toEqual([0, 0]);
    expect(unmerged.totals.machineFramesUsed).toBe(at(r, 'filled').totals.machineFramesUsed);
  });

  it('ksm-max-page-sharing: 25 identical pages at max_page_sharing 10 give 3 shared + 22 sharing in one chain', async () => {
    const r = await runScenario(await load('ksm-max-page-sharing.json'));
    expect(r.totals.failedSteps).toBe(0);
    const merged = at(r, 'merged');
    // ksm_tests.c: 25 % 10 is neither 0 nor 1, so pages_shared = 25 / 10 + 1, pages_sharing = 25 - pages_shared.
    expect(sharing(merged)).toEqual({ pages_shared: 3, pages_sharing: 22, hvShared: 3, hvSharing: 22 });
    expect([merged.dedup['stable_node_chains'], merged.dedup['stable_node_dups']]).toEqual([1, 3]);
    expect(sharing(at(r, 'unmerged'))).toEqual({ pages_shared: 0, pages_sharing: 0, hvShared: 0, hvSharing: 0 });
    const again = at(r, 'merged-again');
    expect(again.knobs['max_page_sharing']).toBe(256);
    expect(sharing(again)).toEqual({ pages_shared: 1, pages_sharing: 24, hvShared: 1, hvSharing: 24 });
    expect([again.dedup['stable_node_chains'], again.dedup['stable_node_dups']]).toEqual([0, 0]);
  });

  it('ksm-zero-pages: with use_zero_pages, zero pages map the zero frame and count in ksm_zero_pages, not pages_shared', async () => {
    const r = await runScenario(await load('ksm-zero-pages.json'));
    expect(r.totals.failedSteps).toBe(0);
    const zero = at(r, 'zero-merged');
    expect(sharing(zero)).toEqual({ pages_shared: 0, pages_sharing: 0, hvShared: 0, hvSharing: 0 });
    expect([zero.dedup['ksm_zero_pages'], zero.totals.zeroPages, zero.domains[0]!['zero_pages']]).toEqual([10, 10, 10]);
    const written = at(r, 'one-written');
    expect([written.dedup['ksm_zero_pages'], written.totals.zeroPages, written.totals.zeroFaults]).toEqual([9, 9, 1]);
    // Without use_zero_pages the 9 zero pages merge with each other, like any content.
    const plain = at(r, 'without-zero-pages');
    expect(plain.dedup['ksm_zero_pages']).toBe(0);
    expect(sharing(plain)).toEqual({ pages_shared: 1, pages_sharing: 8, hvShared: 1, hvSharing: 8 });
    expect(plain.totals.zeroPages).toBe(0);
  });

  it('ksm-unmerge: writing both pages of a merged pair brings the counters back to 0; a page changed every scan never merges', async () => {
    const r = await runScenario(await load('ksm-unmerge.json'));
    expect(r.totals.failedSteps).toBe(0);
    expect(sharing(at(r, 'pair-merged'))).toEqual({ pages_shared: 1, pages_sharing: 1, hvShared: 1, hvSharing: 1 });
    const written = at(r, 'pair-written');
    expect(sharing(written)).toEqual({ pages_shared: 0, pages_sharing: 0, hvShared: 0, hvSharing: 0 });
    expect(written.domains[0]!['merging_pages']).toBe(0);
    expect(sharing(at(r, 'six-merged'))).toEqual({ pages_shared: 1, pages_sharing: 5, hvShared: 1, hvSharing: 5 });
    // gfn 4 changes before every scan: copied out, and volatile ever after.
    const volatile = at(r, 'one-volatile');
    expect(sharing(volatile)).toEqual({ pages_shared: 1, pages_sharing: 4, hvShared: 1, hvSharing: 4 });
    expect(volatile.dedup['pages_volatile']).toBeGreaterThanOrEqual(1);
    expect(volatile.domains[0]!.sharedPages).toBe(5);
  });

  it('ksm-scan-time: a full scan of N pages at pages_to_scan 100, sleep_millisecs 20 takes (floor(N/100) + 1) x 20 ms', async () => {
    const r = await runScenario(await load('ksm-scan-time.json'));
    const [s1, s2, s3] = ['scan-1', 'scan-2', 'scan-3'].map((l) => at(r, l));
    expect([s1!.dedup['full_scans'], s2!.dedup['full_scans'], s3!.dedup['full_scans']]).toEqual([1, 2, 3]);
    // 2 x 1000 mergeable pages: 20 batches scan them, and as in Linux the 21st, which runs off
    // the end of the mm list, counts the full scan.
    expect(s2!.tNs - s1!.tNs).toBe((2000 / 100 + 1) * 20 * NS_PER_MS);
    expect(s3!.tNs - s2!.tNs).toBe((2000 / 100 + 1) * 20 * NS_PER_MS);
    expect(s2!.dedup['pages_scanned']! - s1!.dedup['pages_scanned']!).toBe(2000);
    // The image halves (512 pages a guest) merge at the second scan.
    expect(sharing(s1!)).toEqual({ pages_shared: 0, pages_sharing: 0, hvShared: 0, hvSharing: 0 });
    expect(sharing(s2!)).toEqual({ pages_shared: 512, pages_sharing: 512, hvShared: 512, hvSharing: 512 });
  });

  it('gives a byte-identical report (outside wall) for the same seed with a scanner and steps', async () => {
    const s = await load('ksm-merge.json');
    expect(withoutWall(await runScenario(s))).toBe(withoutWall(await runScenario(s)));
  });
});

// Run at collection time so that each test's name carries the strategy's figures.
const staticCompare = await load('static-compare.json');
const compared = await Promise.all(
  (['inline', 'ksm', 'esx'] as const).map(async (strategy) => {
    const r = await runScenario(parseScenario({ ...staticCompare, dedup: { strategy } }));
    return {
      strategy,
      report: r,
      framesUsed: r.totals.machineFramesUsed,
      convergedS: (r.dedup.convergedAtNs / NS_PER_S).toFixed(2),
      guestCpuMs: (r.cpu.guestNs / NS_PER_MS).toFixed(1),
      dedupCpuMs: (r.cpu.dedupNs / NS_PER_MS).toFixed(1),
    };
  }),
);

describe('static-compare: static contents under inline, ksm and esx', () => {
  for (const { strategy, report, framesUsed, convergedS, guestCpuMs, dedupCpuMs } of compared) {
    it(`${strategy}: ${framesUsed} frames used, converged at ${convergedS} s, simulated CPU guests ${guestCpuMs} ms + dedup ${dedupCpuMs} ms`, () => {
      expect(report.dedup.strategy).toBe(strategy);
      expect(report.failures).toEqual([]);
      // Every strategy ends where inline does: one copy of the shared image, private pages apart.
      expect(framesUsed).toBe(compared[0]!.framesUsed);
      // ... and gets there well before the end of the run.
      expect(report.dedup.convergedAtNs).toBeLessThan(report.simulatedNs - 5 * NS_PER_S);
      if (strategy === 'inline') expect(report.cpu.dedupNs).toBe(0);
      else expect(report.cpu.dedupNs).toBeGreaterThan(0);
    });
  }

  it('saves the same for every strategy: 4 guests of 8192 pages, 70% one image', () => {
    const pages = 4 * 8192;
    const image = Math.floor(0.7 * 8192);
    // The zero frame, one copy of the image, every guest's private pages.
    expect(compared[0]!.framesUsed).toBe(1 + image + 4 * (8192 - image));
    expect(compared.map((c) => c.report.totals.guestPages)).toEqual([pages, pages, pages]);
    // Scanners converge later than inline, which shares as the guests write.
    expect(Number(compared[1]!.convergedS)).toBeGreaterThan(Number(compared[0]!.convergedS));
  });
});

describe('a strategy of your own, through the simulator', () => {
  it('runs the README example HashMapDedup and ends where inline does', async () => {
    const r = await runScenario(parseScenario(staticCompare), { dedup: new HashMapDedup() });
    expect(r.dedup.strategy).toBe('hash-map');
    expect(r.failures).toEqual([]);
    expect(r.totals.machineFramesUsed).toBe(compared[0]!.framesUsed);
    expect(r.totals.pagesSharing).toBe(compared[0]!.report.totals.pagesSharing);
  });
});
