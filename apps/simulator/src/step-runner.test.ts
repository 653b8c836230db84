import { describe, expect, it } from 'vitest';
import { NS_PER_MS, NS_PER_S, PluginError } from '@pagevisor/types';
import { parseScenario, ScenarioError, type ScenarioInput } from '@pagevisor/workloads';
import { TinyScanner } from '../tests/tiny-scanner.js';
import type { Report } from './report.js';
import { runScenario } from './run-scenario.js';

/** Idle guests: every page zero, no writes; boot of 256 pages in one batch at time 0. */
const idle = { memoryMiB: 1, image: { id: 'none', fraction: 0 }, zeroFraction: 1, writeRatePagesPerS: 0 };

function scenario(steps: unknown[], over: Partial<ScenarioInput> = {}) {
  return parseScenario({
    name: 'steps',
    seed: 3,
    machine: { memoryMiB: 8 },
    durationS: 0,
    sampleIntervalS: 0.01,
    guests: [{ name: 'vm', count: 2, ...idle }],
    steps,
    ...over,
  });
}

function checkpoint(r: Report, label: string) {
  const cp = r.checkpoints.find((c) => c.label === label);
  if (cp === undefined) throw new Error(`no checkpoint ${label}`);
  return cp;
}

function withoutWall(r: Report): string {
  const { wall: _wall, ...rest } = r;
  return JSON.stringify(rest);
}

describe('idle guests', () => {
  it('boot to zero pages and never write (image fraction 0, zeroFraction 1, writeRatePagesPerS 0)', async () => {
    const r = await runScenario(scenario([], { durationS: 5 }));
    expect(r.guests.map((g) => [g.state, g.pagesBooted, g.writes, g.wholePageWrites])).toEqual([
      ['done', 256, 0, 0],
      ['done', 256, 0, 0],
    ]);
    // Inline dedup maps every populated page to the zero frame: nothing else is used.
    expect(r.totals).toMatchObject({ guestPages: 512, zeroPages: 512, machineFramesUsed: 1, cowFaults: 0, zeroFaults: 0 });
    // Boot takes 256 pages / 262144 pages/s.
    expect(r.simulatedNs).toBe(976_563 + 5 * NS_PER_S);
  });
});

describe('steps with inline dedup', () => {
  it('fills, writes and checkpoints with exact numbers', async () => {
    const r = await runScenario(
      scenario([
        { op: 'checkpoint', label: 'booted' },
        { op: 'fill', guest: 'vm-0', gfn: 0, count: 10, pattern: 42 },
        { op: 'fill', guest: 'vm-1', gfn: 100, count: 10, pattern: 42 },
        { op: 'checkpoint', label: 'filled' },
        { op: 'write', guest: 'vm-0', gfn: 3, offset: 4000, bytes: [1, 2, 3] },
        { op: 'checkpoint', label: 'written' },
      ]),
    );
    expect(r.steps).toEqual([
      { op: 'checkpoint', tNs: 0, ok: true, failed: false },
      { op: 'fill', tNs: 0, ok: true, failed: false },
      { op: 'fill', tNs: 0, ok: true, failed: false },
      { op: 'checkpoint', tNs: 0, ok: true, failed: false },
      { op: 'write', tNs: 0, ok: true, failed: false },
      { op: 'checkpoint', tNs: 0, ok: true, failed: false },
    ]);
    expect(r.checkpoints.map((c) => c.label)).toEqual(['booted', 'filled', 'written']);
    expect(checkpoint(r, 'booted').totals).toMatchObject({ machineFramesUsed: 1, pagesShared: 0, zeroPages: 512 });
    // 20 identical pages on one frame: 1 shared, 19 sharing.
    expect(checkpoint(r, 'filled').totals).toMatchObject({ machineFramesUsed: 2, pagesShared: 1, pagesSharing: 19, zeroPages: 492 });
    // The partial write copied the page out: 1 + 18 remain.
    const written = checkpoint(r, 'written');
    expect(written.totals).toMatchObject({ machineFramesUsed: 3, pagesShared: 1, pagesSharing: 18, cowFaults: 1 });
    expect(written.domains.map((d) => [d.name, d.privatePages, d.sharedPages, d.zeroPages, d.cowFaults])).toEqual([
      ['vm-0', 1, 9, 246, 1],
      ['vm-1', 0, 10, 246, 0],
    ]);
    expect(written.dedup['hits']).toBe(19);
    expect(written.knobs).toEqual({});
    expect(r.totals.failedSteps).toBe(0);
  });

  it('fills seeded content: one page repeated, or one page per gfn, alike in every guest', async () => {
    const r = await runScenario(
      scenario([
        { op: 'fill', guest: 'vm-0', gfn: 0, count: 8, seed: 5 },
        { op: 'checkpoint', label: 'repeated' },
        { op: 'fill', guest: 'vm-0', gfn: 0, count: 8, seed: 5, distinct: true },
        { op: 'fill', guest: 'vm-1', gfn: 50, count: 8, seed: 5, distinct: true },
        { op: 'checkpoint', label: 'distinct' },
      ]),
    );
    expect(checkpoint(r, 'repeated').totals).toMatchObject({ pagesShared: 1, pagesSharing: 7 });
    // 8 different pages, each in both guests.
    expect(checkpoint(r, 'distinct').totals).toMatchObject({ pagesShared: 8, pagesSharing: 8, machineFramesUsed: 9 });
  });

  it('records a refusal and goes on; discard and populate change the reservation', async () => {
    const r = await runScenario(
      scenario([
        { op: 'discard', guest: 'vm-1', gfn: 0, count: 6 },
        { op: 'write', guest: 'vm-1', gfn: 5, offset: 0, bytes: [7] },
        { op: 'set', knob: 'run', value: 1 },
        { op: 'populate', guest: 'vm-1', gfn: 0, count: 6 },
        { op: 'populate', guest: 'vm-1', gfn: 0, count: 1 },
        { op: 'checkpoint', label: 'end' },
      ]),
    );
    expect(r.steps.map((s) => [s.op, s.ok, s.errno ?? null, s.failed])).toEqual([
      ['discard', true, null, false],
      ['write', false, 'EINVAL', false],
      ['set', false, 'EOPNOTSUPP', false],
      ['populate', true, null, false],
      ['populate', false, 'EEXIST', false],
      ['checkpoint', true, null, false],
    ]);
    expect(r.steps[1]!.message).toBe('write_page: EINVAL: dom 2 gfn 5 is not populated');
    expect(r.steps[2]!.message).toMatch(/the strategy "inline" has no knobs \(cannot set run\)/);
    expect(checkpoint(r, 'end').domains.map((d) => d.totPages)).toEqual([256, 256]);
    expect(r.totals.failedSteps).toBe(0);
  });

  it("forks a guest: the child reads its parent's pages, and writes on either side stay their own", async () => {
    const reads: boolean[] = [];
    const r = await runScenario(
      scenario([
        { op: 'fill', guest: 'vm-0', gfn: 0, count: 8, seed: 4, distinct: true },
        { op: 'checkpoint', label: 'filled' },
        { op: 'fork', guest: 'vm-0', child: 'kid' },
        { op: 'checkpoint', label: 'forked' },
        { op: 'wait', ms: 20 },
        { op: 'write', guest: 'kid', gfn: 0, offset: 0, bytes: [9] },
        { op: 'write', guest: 'vm-0', gfn: 1, offset: 0, bytes: [9] },
        { op: 'discard', guest: 'kid', gfn: 7, count: 1 },
        { op: 'checkpoint', label: 'written' },
      ]),
      {
        onSample: (hv) => {
          const [parent, kid] = [hv.domains().find((d) => d.name === 'vm-0'), hv.domains().find((d) => d.name === 'kid')];
          if (kid === undefined) return;
          const a = new Uint8Array(4096);
          const b = new Uint8Array(4096);
          for (const gfn of [2, 3]) {
            hv.readPage(parent!.id, gfn as never, 0, a, 0, 4096);
            hv.readPage(kid.id, gfn as never, 0, b, 0, 4096);
            reads.push(a.some((x) => x !== 0) && a.every((x, i) => x === b[i]!));
          }
        },
      },
    );
    expect(r.steps.every((s) => s.ok)).toBe(true);
    const forked = checkpoint(r, 'forked');
    expect(forked.domains.map((d) => [d.name, d.totPages])).toEqual([
      ['vm-0', 256],
      ['vm-1', 256],
      ['kid', 256],
    ]);
    // The child maps every page of its parent: no frame of its own.
    expect(forked.totals.machineFramesUsed).toBe(checkpoint(r, 'filled').totals.machineFramesUsed);
    const written = checkpoint(r, 'written');
    // Two copy-on-write faults (one each side); the discarded page leaves only the child.
    expect(written.totals.cowFaults - forked.totals.cowFaults).toBe(2);
    expect(written.totals.machineFramesUsed - forked.totals.machineFramesUsed).toBe(2);
    expect(written.domains.find((d) => d.name === 'kid')!.totPages).toBe(255);
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.every(Boolean)).toBe(true);
    // (runScenario audits the hypervisor at the end and throws on a broken invariant.)
  });

  it('discards, populates and advises through the guest\'s shim: its regions decide what is mapped', async () => {
    const r = await runScenario(
      scenario([
        { op: 'discard', guest: 'vm-0', gfn: 10, count: 5 },
        { op: 'discard', guest: 'vm-0', gfn: 8, count: 4 },
        { op: 'madvise', guest: 'vm-0', gfn: 12, count: 4, advice: 'mergeable' },
        { op: 'populate', guest: 'vm-0', gfn: 9, count: 3 },
        { op: 'checkpoint', label: 'holed' },
        { op: 'populate', guest: 'vm-0', gfn: 10, count: 5 },
        { op: 'madvise', guest: 'vm-0', gfn: 0, count: 256, advice: 'unmergeable' },
        { op: 'checkpoint', label: 'end' },
      ]),
    );
    expect(r.steps.map((s) => [s.op, s.errno ?? 'ok', s.message ?? ''])).toEqual([
      ['discard', 'ok', ''],
      ['discard', 'EINVAL', 'munmap: EINVAL: pages [8, 12) of dom 1 are not all mapped by mmap'],
      ['madvise', 'ENOMEM', 'madvise: ENOMEM: gfn 12 of dom 1 is not mapped'],
      ['populate', 'EEXIST', 'mmap: EEXIST: gfn 9 of dom 1 is mapped already'],
      ['checkpoint', 'ok', ''],
      ['populate', 'ok', ''],
      ['madvise', 'ok', ''],
      ['checkpoint', 'ok', ''],
    ]);
    // The refused steps changed nothing: only the first discard did.
    expect(checkpoint(r, 'holed').domains.map((d) => d.totPages)).toEqual([251, 256]);
    expect(checkpoint(r, 'end').domains.map((d) => d.totPages)).toEqual([256, 256]);
    expect(r.totals.failedSteps).toBe(0);
  });

  it('fails the run at a step whose outcome differs from its expect, and runs no further step', async () => {
    const r = await runScenario(
      scenario([
        { op: 'set', knob: 'run', value: 1, expect: 'EOPNOTSUPP' },
        { op: 'checkpoint', label: 'a', expect: 'ok' },
        { op: 'write', guest: 'vm-0', gfn: 0, offset: 0, bytes: [1], expect: 'EBUSY' },
        { op: 'checkpoint', label: 'never' },
      ]),
    );
    expect(r.steps.map((s) => [s.op, s.ok, s.expect, s.failed])).toEqual([
      ['set', false, 'EOPNOTSUPP', false],
      ['checkpoint', true, 'ok', false],
      ['write', true, 'EBUSY', true],
    ]);
    expect(r.steps[2]!.message).toBe('succeeded, but EBUSY was expected');
    expect(r.checkpoints.map((c) => c.label)).toEqual(['a']);
    expect(r.totals.failedSteps).toBe(1);

    const refused = await runScenario(scenario([{ op: 'set', knob: 'run', value: 0, expect: 'ok' }]));
    expect(refused.steps[0]).toMatchObject({ ok: false, errno: 'EOPNOTSUPP', failed: true });
    expect(refused.steps[0]!.message).toMatch(/\(expected ok\)$/);
  });

  it('waits: steps start once every guest has booted, and the run lasts as long as they do', async () => {
    const slow = { name: 'slow', memoryMiB: 1, zeroFraction: 1, bootPagesPerS: 1000 };
    const r = await runScenario(
      scenario([{ op: 'checkpoint', label: 'start' }, { op: 'wait', ms: 250 }, { op: 'checkpoint', label: 'end' }], {
        guests: [{ name: 'vm', count: 2, ...idle }, slow],
      }),
    );
    // The slow guest boots 256 pages at 1000 pages/s in one batch at time 0: done at once.
    expect(checkpoint(r, 'start').tNs).toBe(0);
    expect(checkpoint(r, 'end').tNs).toBe(250 * NS_PER_MS);
    expect(r.steps[1]).toEqual({ op: 'wait', tNs: 250 * NS_PER_MS, ok: true, failed: false });
    expect(r.simulatedNs).toBe(250 * NS_PER_MS);
    expect(r.timeline.at(-1)!.tNs).toBe(250 * NS_PER_MS);

    // A guest of 1024 pages at 1000 pages/s boots in two batches (512 pages each), at 0 and 0.512 s.
    const late = await runScenario(
      scenario([{ op: 'checkpoint', label: 'start' }], { guests: [{ name: 'vm', count: 2, ...idle }, { ...slow, memoryMiB: 4 }] }),
    );
    expect(checkpoint(late, 'start').tNs).toBe(512 * NS_PER_MS);
    expect(checkpoint(late, 'start').totals.guestPages).toBe(512 + 1024);
  });

  it('refuses wait_full_scans before running when the strategy counts no full scans', async () => {
    const s = scenario([{ op: 'wait', ms: 1 }, { op: 'wait_full_scans', count: 2 }]);
    const err = await runScenario(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScenarioError);
    expect((err as ScenarioError).issues).toEqual([
      'steps[1].op: wait_full_scans needs a strategy that counts full_scans; "inline" does not (use wait)',
    ]);
  });

  it("passes strategy options to the strategy's plugin, naming a refused one by its field", async () => {
    const bad = parseScenario({ ...scenario([]), dedup: { strategy: 'inline', initialCapacity: 3 } });
    const err = await runScenario(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).message).toMatch(/^plugin inline: options refused: initialCapacity must be a power of two/);
    const good = await runScenario(parseScenario({ ...scenario([]), dedup: { strategy: 'inline', initialCapacity: 64 } }));
    expect(good.config.dedup).toEqual({ strategy: 'inline', initialCapacity: 64 });
    expect(good.dedup.stats['capacity']).toBe(64);
  });
});

describe('steps with a scanning strategy', () => {
  const run = (steps: unknown[], over: Partial<ScenarioInput> = {}, dedup = new TinyScanner()) =>
    runScenario(scenario(steps, over), { dedup }).then((r) => ({ r, dedup }));

  it('uses the strategy given in place of the scenario\'s, marks guests mergeable unless told not to', async () => {
    const { r, dedup } = await run([{ op: 'madvise', guest: 'solo', gfn: 4, count: 8, advice: 'unmergeable' }], {
      guests: [{ name: 'vm', count: 2, ...idle }, { name: 'solo', ...idle, mergeable: false }],
    });
    expect(r.config.dedup).toEqual({ strategy: 'tiny' });
    expect(r.dedup.strategy).toBe('tiny');
    expect([...dedup.mergeable]).toEqual([1, 2]);
    expect(dedup.advised).toEqual(['3:4+8=false']);
  });

  it('waits for full scans, the scanner waking every sleep_millisecs', async () => {
    // 2 guests x 256 pages, 100 pages a wake every 20 ms: a full scan ends at the 6th wake.
    const { r, dedup } = await run([
      { op: 'fill', guest: 'vm-0', gfn: 0, count: 20, pattern: 42 },
      { op: 'fill', guest: 'vm-1', gfn: 0, count: 20, pattern: 42 },
      { op: 'checkpoint', label: 'filled' },
      { op: 'wait_full_scans', count: 2 },
      { op: 'checkpoint', label: 'scanned' },
    ]);
    expect(checkpoint(r, 'filled').dedup['full_scans']).toBe(0);
    const scanned = checkpoint(r, 'scanned');
    expect(scanned.dedup['full_scans']).toBe(2);
    expect(scanned.tNs).toBe(12 * 20 * NS_PER_MS);
    expect(dedup.wakes).toEqual(Array.from({ length: 12 }, (_, i) => (i + 1) * 20 * NS_PER_MS));
    expect(r.steps[3]).toEqual({ op: 'wait_full_scans', tNs: 240 * NS_PER_MS, ok: true, failed: false });
    // The tiny scanner merges 39 of the 40 pages (and the guests' zero pages, which have frames).
    expect(scanned.totals.pagesShared).toBe(2);
    expect(scanned.knobs).toEqual({ run: 1, pages_to_scan: 100, sleep_millisecs: 20, max_page_sharing: 256 });
    // The hypervisor's figures win a name clash with the strategy's per-domain ones.
    expect(scanned.domains.map((d) => [d['mergeable'], d.cpuNs >= 0])).toEqual([
      [1, true],
      [1, true],
    ]);
    // The run ends with the steps: the scanner alone does not keep it going.
    expect(r.simulatedNs).toBe(240 * NS_PER_MS);
    expect(r.cpu.dedupNs).toBe(r.totals.dedupCpuNs);
    expect(r.cpu.dedupNs).toBeGreaterThan(0);
    expect(r.cpu.totalNs).toBe(r.cpu.guestNs + r.cpu.dedupNs);
  });

  it('runs guests, then the scanner, then the steps at one time', async () => {
    // The wait ends at 40 ms, when the scanner also wakes: the checkpoint sees that wake.
    const { r } = await run([{ op: 'wait', ms: 40 }, { op: 'checkpoint', label: 'at-40' }]);
    expect(checkpoint(r, 'at-40').dedup['wakes']).toBe(2);
  });

  it('records a knob refusal, and fails a wait_full_scans that cannot progress', async () => {
    const { r } = await run([
      { op: 'fill', guest: 'vm-0', gfn: 0, count: 2, pattern: 1 },
      { op: 'fill', guest: 'vm-1', gfn: 0, count: 2, pattern: 1 },
      { op: 'wait_full_scans', count: 1 },
      { op: 'set', knob: 'max_page_sharing', value: 2 },
      { op: 'set', knob: 'max_page_sharing', value: 2, expect: 'EBUSY' },
      { op: 'set', knob: 'run', value: 0 },
      { op: 'wait_full_scans', count: 1 },
      { op: 'checkpoint', label: 'never' },
    ]);
    expect(r.steps.map((s) => [s.op, s.ok, s.errno ?? null, s.failed])).toEqual([
      ['fill', true, null, false],
      ['fill', true, null, false],
      ['wait_full_scans', true, null, false],
      ['set', false, 'EBUSY', false],
      ['set', false, 'EBUSY', false],
      ['set', true, null, false],
      ['wait_full_scans', false, null, true],
    ]);
    expect(r.steps[6]!.message).toMatch(/^full_scans cannot rise: the scanner has nothing to do \(run = 0, or no mergeable pages\?\) and no guest is running \(it is 1, waiting for 2\)$/);
    expect(r.steps[6]!.tNs).toBe(120 * NS_PER_MS);
    expect(r.checkpoints).toEqual([]);
    expect(r.totals.failedSteps).toBe(1);
    expect(r.simulatedNs).toBe(120 * NS_PER_MS);
  });

  it('fails a wait, like any step, whose expect is not ok', async () => {
    const { r } = await run([{ op: 'wait_full_scans', count: 1, expect: 'EBUSY' }, { op: 'checkpoint', label: 'never' }]);
    expect(r.steps).toEqual([
      { op: 'wait_full_scans', tNs: 120 * NS_PER_MS, ok: true, message: 'succeeded, but EBUSY was expected', expect: 'EBUSY', failed: true },
    ]);
    expect(r.checkpoints).toEqual([]);
  });

  it('fails a wait_full_scans at its timeout while guests keep the run going', async () => {
    const { r } = await run([{ op: 'set', knob: 'run', value: 0 }, { op: 'wait_full_scans', count: 1, timeoutS: 2 }], { durationS: 10 });
    expect(r.steps[1]).toMatchObject({ op: 'wait_full_scans', ok: false, failed: true, tNs: 2 * NS_PER_S });
    expect(r.steps[1]!.message).toBe('full_scans did not rise by 1 within 2 simulated s (it is 0, waiting for 1)');
    // The guests still run to their end.
    expect(r.simulatedNs).toBe(976_563 + 10 * NS_PER_S);
  });

  it('gives a byte-identical report (outside wall) for the same seed, with steps and a scanner', async () => {
    const steps = [
      { op: 'fill', guest: 'vm-0', gfn: 0, count: 30, seed: 9, distinct: true },
      { op: 'fill', guest: 'vm-1', gfn: 0, count: 30, seed: 9, distinct: true },
      { op: 'wait_full_scans', count: 2 },
      { op: 'write', guest: 'vm-1', gfn: 1, offset: 9, bytes: [9] },
      { op: 'wait', ms: 100 },
      { op: 'checkpoint', label: 'end' },
    ];
    const busy = { guests: [{ name: 'vm', count: 2, memoryMiB: 1, image: { id: 'os', fraction: 0.5 }, writeRatePagesPerS: 100 }], durationS: 1 };
    const a = (await run(steps, busy)).r;
    const b = (await run(steps, busy)).r;
    expect(withoutWall(b)).toBe(withoutWall(a));
    expect(a.guests.every((g) => g.writes === 100)).toBe(true);
    expect(a.dedup.convergedAtNs).toBeGreaterThan(0);
  });
});
