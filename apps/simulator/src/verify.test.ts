// `--verify`: every example scenario under every strategy reads back what it wrote; a frame
// corrupted behind the hypervisor's back is found and named; verification changes no figure.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hypervisor } from '@pagevisor/hypervisor';
import { asGfn, asMfn, P2mType, PAGE_SIZE, type DomId } from '@pagevisor/types';
import { DEDUP_STRATEGIES } from '@pagevisor/dedup';
import { parseScenario, type Scenario, type ScenarioInput } from '@pagevisor/workloads';
import { ExitCode, main } from './cli.js';
import type { Report } from './report.js';
import { runScenario } from './run-scenario.js';
import { formatSummary } from './summary.js';
import { exampleCases, exampleFiles, overcommitWith, under } from '../tests/example-scenarios.js';
import { tinyScenario } from '../tests/tiny-scenario.js';


function withoutWall(r: Report): string {
  const { wall: _wall, ...rest } = r;
  return JSON.stringify(rest);
}

function withoutVerify(r: Report): string {
  const { wall: _wall, verify: _verify, ...rest } = r;
  return JSON.stringify(rest);
}

const files = await exampleFiles();
/** The example scenarios, shrunk, and swap variants of overcommit.json: injected device faults, per-domain file areas with lz4. */
const cases: [string, Scenario][] = [
  ...(await exampleCases(files)),
  ['overcommit.json, per-domain lz4 file areas', await overcommitWith({ mode: 'per-domain', device: 'file', compression: 'lz4' })],
];

describe('--verify on every example scenario (scale-16x1g.json aside) under every strategy', () => {
  it('covers the scenario files, swap and injected swap faults', () => {
    expect(files).toEqual(expect.arrayContaining(['ksm-merge.json', 'overcommit.json', 'static-compare.json']));
    expect(files).not.toContain('scale-16x1g.json');
    expect(cases.some(([, s]) => s.machine.swap?.faults !== undefined)).toBe(true);
  });

  for (const [name, base] of cases) {
    for (const strategy of DEDUP_STRATEGIES) {
      it(`${name} under ${strategy}: every guest page reads back as written, and no other figure changes`, async () => {
        const s = under(base, strategy);
        const r = await runScenario(s, { verify: true });
        const v = r.verify!;
        expect(r.failures).toEqual([]);
        expect(r.totals.failedSteps).toBe(0);
        expect(v.end.pagesDiffered).toBe(0);
        expect(v.samples.pagesDiffered).toBe(0);
        expect(v.differences).toEqual([]);
        expect(v.unreadable).toEqual([]);
        // The children of fork steps are verified too, each of its parent's size.
        const forks = s.steps.filter((st) => st.op === 'fork').map((st) => r.guests.find((g) => g.name === st.guest)!.pages);
        expect(v.guests).toEqual({ verified: r.guests.length + forks.length, notVerified: [] });
        // Every populated page was read back: as many as the guests hold.
        expect(v.end.pagesVerified).toBe(r.totals.guestPages);
        expect(v.end.pages).toBe(r.guests.reduce((n, g) => n + g.pages, 0) + forks.reduce((n, p) => n + p, 0));
        expect(v.samples.pagesVerified).toBeGreaterThan(0);
        expect(v.samples.mode).toBe(s.machine.swap === undefined ? 'read_page' : 'resident');
        expect(v.passed).toBe(true);
        if (s.machine.swap !== undefined) {
          // Paged pages were faulted back in by the read-back, after the figures were taken.
          expect(r.totals.pagedPages).toBeGreaterThan(0);
          expect(v.end.swapIns).toBeGreaterThan(0);
          expect(v.samples.pagesSkipped).toBeGreaterThan(0);
        }
        if (s.machine.swap?.faults !== undefined) {
          // Faults hit the run and the read-back too: its refused swap-ins were retried.
          expect(r.swap!.pauses.length + r.swap!.evictionFailures).toBeGreaterThan(0);
          expect(v.end.retries).toBeGreaterThan(0);
        } else {
          expect(v.end.retries).toBe(0);
        }
        // The same run without verification reports the same figures.
        expect(withoutVerify(r)).toBe(withoutWall(await runScenario(s)));
      });
    }
  }
});

/** A tiny scenario (see tinyScenario), 1 simulated second sampled every 0.25 s. */
function tiny(over: Partial<ScenarioInput> = {}, guest: Record<string, unknown> = {}): Scenario {
  return tinyScenario({ durationS: 1, sampleIntervalS: 0.25, ...over }, guest);
}

/** The highest gfn of `dom` mapping a private frame (ram_rw, one mapping): its frame and gfn. */
function privatePage(hv: Hypervisor, dom: DomId): { gfn: number; mfn: number } {
  const table = hv.p2m.table(dom)!;
  for (let g = table.size - 1; g >= 0; g--) {
    if (table.type(asGfn(g)) === P2mType.ram_rw && hv.debugGfn(dom, asGfn(g)) === 1) return { gfn: g, mfn: table.mfn(asGfn(g)) };
  }
  throw new Error(`dom ${dom} has no private page`);
}

/** Flips every bit of byte `offset` of the frame behind `dom`'s private page, behind the hypervisor's back. */
function corrupt(hv: Hypervisor, dom: DomId, offset: number): { gfn: number; was: number } {
  const { gfn, mfn } = privatePage(hv, dom);
  const b = new Uint8Array(1);
  hv.memory.read(asMfn(mfn), offset, b, 0, 1);
  const was = b[0]!;
  b[0] = was ^ 0xff;
  hv.memory.write(asMfn(mfn), offset, b, 0, 1);
  return { gfn, was };
}

describe('--verify fails when a page differs', () => {
  it('names exactly the domain and gfn of a frame corrupted after the run, and the first differing byte', async () => {
    let hit: { gfn: number; was: number } | undefined;
    const r = await runScenario(tiny(), { verify: true, beforeVerify: (hv) => (hit = corrupt(hv, 2 as DomId, 100)) });
    const v = r.verify!;
    expect(v.passed).toBe(false);
    expect(v.end.pagesDiffered).toBe(1);
    expect(v.end.pagesVerified).toBe(2048);
    expect(v.differences).toEqual([{ guest: 'g-1', domId: 2, gfn: hit!.gfn, tNs: r.simulatedNs, offset: 100, expected: hit!.was, actual: hit!.was ^ 0xff, differingBytes: 1 }]);
    expect(v.samples.pagesDiffered).toBe(0);
    const summary = formatSummary(r);
    expect(summary).toContain('verify: FAILED: 2,048 pages read back, 1 differ');
    expect(summary).toContain(`g-1 (dom 2) gfn ${hit!.gfn}: first differing byte at offset 100`);
    // Only the verify section tells: the figures are the plain run's.
    expect(withoutVerify(r)).toBe(withoutWall(await runScenario(tiny())));
  });

  it('catches a corruption at a timeline sample, and at the end, when no write heals it', async () => {
    // No dedup index to disagree with the corrupted frame, no writes to overwrite it.
    const s = tiny({ dedup: { strategy: 'none' } }, { writeRatePagesPerS: 0 });
    let hit: { gfn: number; was: number } | undefined;
    let atNs = -1;
    const r = await runScenario(s, {
      verify: { samplePages: 8192 },
      onSample: (hv, tNs) => {
        if (hit === undefined && tNs >= 0.5e9) {
          hit = corrupt(hv, 1 as DomId, 4095);
          atNs = tNs;
        }
      },
    });
    const v = r.verify!;
    expect(v.passed).toBe(false);
    expect(v.samples.pagesDiffered).toBeGreaterThan(0);
    expect(v.samples.differences[0]).toMatchObject({ guest: 'g-0', domId: 1, gfn: hit!.gfn, tNs: atNs, offset: 4095, differingBytes: 1 });
    expect(v.differences).toEqual([{ guest: 'g-0', domId: 1, gfn: hit!.gfn, tNs: r.simulatedNs, offset: 4095, expected: hit!.was, actual: hit!.was ^ 0xff, differingBytes: 1 }]);
  });

  it('reports a guest that failed as not verified, not as a pass', async () => {
    // 2 x 4 MiB without dedup on 7 MiB: the second guest runs out of frames while booting.
    const r = await runScenario(tiny({ machine: { memoryMiB: 7 }, dedup: { strategy: 'none' } }), { verify: true });
    expect(r.failures.map((f) => f.errno)).toEqual(['ENOMEM']);
    const f = r.failures[0]!;
    const v = r.verify!;
    expect(v.guests).toEqual({ verified: 1, notVerified: [{ guest: f.guest, domId: f.domId, reason: `failed: ENOMEM at ${f.op}` }] });
    expect(v.end.pagesDiffered).toBe(0);
    expect(v.end.pagesVerified).toBe(1024);
    expect(v.passed).toBe(false);
    expect(formatSummary(r)).toContain(`${f.guest} (dom ${f.domId}) not verified: failed: ENOMEM`);
  });

  it('follows steps: fills, partial writes, discards (refused reads as unpopulated) and populates', async () => {
    const idle = { name: 'vm', count: 2, memoryMiB: 1, zeroFraction: 1 };
    const s = parseScenario({
      name: 'steps',
      machine: { memoryMiB: 8 },
      durationS: 0,
      guests: [idle],
      steps: [
        { op: 'fill', guest: 'vm-0', gfn: 0, count: 8, pattern: 7 },
        { op: 'fill', guest: 'vm-1', gfn: 0, count: 8, seed: 5, distinct: true },
        { op: 'fill', guest: 'vm-1', gfn: 8, count: 8, seed: 5 },
        { op: 'write', guest: 'vm-0', gfn: 3, offset: 4000, bytes: [1, 2, 3] },
        { op: 'write', guest: 'vm-1', gfn: 9, offset: 0, bytes: Array.from({ length: 4096 }, (_, i) => i & 0xff) },
        { op: 'discard', guest: 'vm-0', gfn: 4, count: 4 },
        { op: 'discard', guest: 'vm-1', gfn: 100, count: 20 },
        { op: 'populate', guest: 'vm-1', gfn: 110, count: 5 },
        { op: 'write', guest: 'vm-1', gfn: 112, offset: 7, bytes: [9] },
        { op: 'write', guest: 'vm-0', gfn: 5, offset: 0, bytes: [1], expect: 'EINVAL' },
      ],
    });
    const r = await runScenario(s, { verify: { samplePages: 0 } });
    expect(r.steps.map((st) => st.ok)).toEqual([true, true, true, true, true, true, true, true, true, false]);
    const v = r.verify!;
    expect(v.end).toMatchObject({ pages: 512, pagesVerified: 512 - 4 - 15, pagesUnpopulated: 4 + 15, pagesDiffered: 0 });
    expect(v.end.pagesVerified).toBe(r.totals.guestPages);
    expect(v.passed).toBe(true);
    expect(v.samples.checks).toBe(0);
    // A discarded page that reads back after all is a difference of populated state.
    const again = await runScenario(s, { verify: true, beforeVerify: (hv) => hv.populatePhysmap(1 as DomId, [6]) });
    expect(again.verify!.differences).toEqual([{ guest: 'vm-0', domId: 1, gfn: 6, tNs: again.simulatedNs, offset: null, expected: null, actual: null, differingBytes: PAGE_SIZE, state: 'expected unpopulated, read a page' }]);
  });

  it('is deterministic: the same seed gives a byte-identical report outside wall', async () => {
    const s = tiny({ machine: { memoryMiB: 3, swap: { faults: { seed: 2, readErrorProbability: 0.05 } } } });
    const a = await runScenario(s, { verify: true });
    const b = await runScenario(s, { verify: true });
    expect(a.verify!.passed).toBe(true);
    expect(a.verify!.end.swapIns).toBeGreaterThan(0);
    expect(withoutWall(a)).toBe(withoutWall(b));
  });
});

describe('pagevisor run --verify', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'pagevisor-verify-'));
    await writeFile(join(tmp, 'tiny.json'), JSON.stringify(tiny()));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  async function cli(args: string[], hooks = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const code = await main(args, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } }, hooks);
    return { code, stdout, stderr };
  }

  it('prints the verdict and exits 0 when every page matches, 2 (a failed run) when one differs', async () => {
    const ok = await cli(['run', join(tmp, 'tiny.json'), '--verify']);
    expect(ok.code).toBe(ExitCode.ok);
    expect(ok.stdout).toMatch(/^verify: passed: 2,048 pages read back, 0 differ; [\d,]+ sampled at [\d,]+ samples \(readPage\), 0 differ; 2 guests verified$/m);
    let gfn = -1;
    const bad = await cli(['run', join(tmp, 'tiny.json'), '--verify'], { beforeVerify: (hv: Hypervisor) => (gfn = corrupt(hv, 1 as DomId, 0).gfn) });
    expect(bad.code).toBe(ExitCode.guestFailed);
    expect(bad.stdout).toContain('verify: FAILED: 2,048 pages read back, 1 differ');
    expect(bad.stdout).toContain(`  g-0 (dom 1) gfn ${gfn}: first differing byte at offset 0`);
    const json = await cli(['run', join(tmp, 'tiny.json'), '--verify', '--json'], { beforeVerify: (hv: Hypervisor) => corrupt(hv, 1 as DomId, 0) });
    expect(json.code).toBe(ExitCode.guestFailed);
    expect((JSON.parse(json.stdout) as Report).verify!.differences.map((d) => [d.domId, d.gfn])).toEqual([[1, gfn]]);
  });

  it('leaves the report without a verify section when not asked, and refuses --verify outside run', async () => {
    const plain = await cli(['run', join(tmp, 'tiny.json'), '--json']);
    expect((JSON.parse(plain.stdout) as Report).verify).toBeUndefined();
    const misplaced = await cli(['replay', 'x.trace', '--verify']);
    expect(misplaced.code).toBe(ExitCode.usage);
    expect(misplaced.stderr).toContain("unknown option '--verify'");
  });
});
