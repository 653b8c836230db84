// machine.contents "bytes" and "fingerprints" give the same results (issue 19): every example
// scenario (the long ones shortened, scale-16x1g.json 64 times smaller), under its own strategy
// and every built-in, with the same seed, uses the same frames, saves the same, takes the same
// faults and moves the same swap traffic, sample by sample; and --verify passes on fingerprints,
// comparing what each page reads back with the fingerprint it should hold. The one difference
// found: a store of the very bytes a page holds (ksm-cow-lazy.json) leaves the page as it was in
// bytes, and makes it a content of its own on fingerprints; that scenario runs with those stores
// changed, and a test of its own shows the difference.
import { describe, expect, it } from 'vitest';
import { DEDUP_STRATEGIES } from '@pagevisor/dedup';
import { FingerprintMemory } from '@pagevisor/machine';
import { parseScenario, type Scenario } from '@pagevisor/workloads';
import { ExitCode, main } from './cli.js';
import type { Report } from './report.js';
import { runScenario } from './run-scenario.js';
import { formatSummary } from './summary.js';
import { EXAMPLES_DIR, exampleCases, exampleFiles, loadExample, overcommitWith, under } from '../tests/example-scenarios.js';
import { tinyScenario } from '../tests/tiny-scenario.js';

const dir = EXAMPLES_DIR;

/** scale-16x1g.json (16 GiB of guests) is too large to run both ways in a test: it runs 64 times smaller, 5 simulated seconds. */
const files = await exampleFiles();
const scale = await loadExample('scale-16x1g.json');
/** `s` with machine and guests `factor` times smaller and at most `maxS` simulated seconds (as apps/bench's shrinkScenario). */
function smaller(s: Scenario, factor: number, maxS: number): Scenario {
  return parseScenario({
    ...s,
    durationS: Math.min(s.durationS, maxS),
    machine: { ...s.machine, memoryMiB: Math.max(1, Math.round(s.machine.memoryMiB / factor)) },
    guests: s.guests.map((g) => ({ ...g, memoryMiB: Math.max(1, Math.round(g.memoryMiB / factor)) })),
  });
}
const cases: [string, Scenario][] = [
  ...(await exampleCases(files)),
  ['overcommit.json, per-domain file areas', await overcommitWith({ mode: 'per-domain', device: 'file' })],
  ['scale-16x1g.json, 64 times smaller, 5 s', smaller(scale, 64, 5)],
  // Room for every guest page before merging, so that ksm, esx and none boot too.
  ['scale-16x1g.json, 64 times smaller, 5 s, on 320 MiB', parseScenario({ ...smaller(scale, 64, 5), machine: { ...scale.machine, memoryMiB: 320 } })],
];

/**
 * The `write` steps of `s` that store, into a page a `fill` step gave a non-zero pattern (and no
 * write has touched since), bytes that are all that pattern: in bytes mode the page is left as
 * it was (still equal to the other pages of the pattern, and merged with them again), but a
 * frame of fingerprints does not know the bytes it holds, so it takes any store but zeros into
 * the zero page as a change, and the page becomes content of its own (FingerprintMemory's
 * documented limit). Their indices into `s.steps`.
 */
function noOpStores(s: Scenario): number[] {
  // Pattern of each untouched pattern page, by guest and gfn; a fork's child starts with its parent's.
  const patterns = new Map<string, Map<number, number>>();
  const of = (guest: string): Map<number, number> => patterns.get(guest) ?? patterns.set(guest, new Map()).get(guest)!;
  const out: number[] = [];
  s.steps.forEach((st, i) => {
    if (st.op === 'fill') {
      for (let g = st.gfn; g < st.gfn + st.count; g++) {
        if (st.pattern !== undefined && st.pattern !== 0) of(st.guest).set(g, st.pattern);
        else of(st.guest).delete(g);
      }
    } else if (st.op === 'write') {
      const pattern = of(st.guest).get(st.gfn);
      if (pattern !== undefined && st.bytes.every((b) => b === pattern)) out.push(i);
      of(st.guest).delete(st.gfn);
    } else if (st.op === 'fork') {
      patterns.set(st.child, new Map(of(st.guest)));
    } else if (st.op === 'discard' || st.op === 'populate' || (st.op === 'madvise' && st.advice === 'dontneed')) {
      // The pages are zeros or gone.
      for (let g = st.gfn; g < st.gfn + st.count; g++) of(st.guest).delete(g);
    }
  });
  return out;
}

/** `s` with the bytes of its no-op stores ({@link noOpStores}) flipped (b ^ 0x80): stores that change the page in both modes. */
function withoutNoOpStores(s: Scenario): Scenario {
  const flip = new Set(noOpStores(s));
  return parseScenario({ ...s, steps: s.steps.map((st, i) => (flip.has(i) && st.op === 'write' ? { ...st, bytes: st.bytes.map((b) => b ^ 0x80) } : st)) });
}

function fingerprints(s: Scenario): Scenario {
  return parseScenario({ ...s, machine: { ...s.machine, contents: 'fingerprints' } });
}

/** What must be equal in both modes: frames, savings, faults, swap traffic, and every sample. */
function figures(r: Report) {
  const t = r.totals;
  return {
    failures: r.failures.map((f) => `${f.guest} ${f.op} ${f.errno} at ${f.atNs}`),
    steps: r.steps,
    totals: {
      guestPages: t.guestPages,
      machineFramesUsed: t.machineFramesUsed,
      savedPct: t.savedPct,
      pagesShared: t.pagesShared,
      pagesSharing: t.pagesSharing,
      zeroPages: t.zeroPages,
      duplicateFrames: t.duplicateFrames,
      cowFaults: t.cowFaults,
      zeroFaults: t.zeroFaults,
      pagedPages: t.pagedPages,
    },
    swap:
      r.swap === undefined
        ? undefined
        : {
            swapOuts: r.swap.swapOuts,
            swapIns: r.swap.swapIns,
            swapInsCached: r.swap.swapInsCached,
            swapInsDeduped: r.swap.swapInsDeduped,
            swapSlotsUsed: r.swap.swapSlotsUsed,
            slotsSavedByDedup: r.swap.slotsSavedByDedup,
            swapBytesWritten: r.swap.swapBytesWritten,
            evictionFailures: r.swap.evictionFailures,
            swapInFailures: r.swap.swapInFailures,
            pauses: r.swap.pauses.length,
          },
    timeline: r.timeline,
    checkpoints: r.checkpoints.map((c) => {
      const { cpuNs: _cpu, dedupCpuNs: _dedupCpu, ...totals } = c.totals;
      return { label: c.label, totals };
    }),
  };
}

/** The report but what may differ between the modes: wall time, the mode itself, the verification. */
function withoutMode(r: Report): unknown {
  const { wall: _wall, verify: _verify, config, ...rest } = r;
  const { contents: _contents, ...machine } = config.machine;
  return { ...rest, config: { ...config, machine } };
}

/**
 * What may differ besides, and why: KSM's simulated CPU (it charges each compare of its
 * content-ordered trees; frames of fingerprints order by fingerprint, not as memcmp orders their
 * bytes, so the trees take other shapes and their walks other lengths: the same merges, other
 * costs), and ESX's hash-table tombstones (its table is keyed by the page hash, which for a page
 * written partially is the low half of the fold, not of the page's XXH64: other slots collide).
 */
const ORDER_DEPENDENT = /^(totals\.dedupCpuNs|cpu\.dedupNs|cpu\.totalNs|checkpoints\[\]\.totals\.dedupCpuNs|(checkpoints\[\]\.)?dedup(\.stats)?\.tombstones)$/;

/** Paths of the leaves where `a` and `b` differ (`dedup.stats.tombstones`, `checkpoints[2].totals.dedupCpuNs`). */
function differences(a: unknown, b: unknown, path = ''): string[] {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return Object.is(a, b) ? [] : [path];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) => differences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], Array.isArray(a) ? `${path}[${k}]` : path === '' ? k : `${path}.${k}`));
}

describe('machine.contents: bytes and fingerprints give the same results', () => {
  it('covers every example scenario but scale-16x1g.json, swap (faults too) and steps', () => {
    expect(files).toEqual(expect.arrayContaining(['ksm-merge.json', 'ksm-zero-write.json', 'overcommit.json', 'overcommit-reading.json', 'static-compare.json']));
    expect(files).not.toContain('scale-16x1g.json');
    expect(cases.length).toBe(files.length + 4);
  });

  for (const [name, base] of cases) {
    // Its own strategy (with its options) and every built-in: inline, ksm, esx, none.
    const strategies = [...new Set([base.dedup.strategy, ...DEDUP_STRATEGIES])];
    const noOps = noOpStores(base);
    for (const strategy of strategies) {
      const title = noOps.length === 0 ? `${name} under ${strategy}` : `${name} under ${strategy}, its ${noOps.length} no-op stores made changes`;
      it(title, async () => {
        const s = under(noOps.length === 0 ? base : withoutNoOpStores(base), strategy);
        const bytes = await runScenario(s);
        const fp = await runScenario(fingerprints(s), { verify: true });
        expect(bytes.config.machine.contents).toBe('bytes');
        expect(fp.config.machine.contents).toBe('fingerprints');
        expect(figures(fp)).toEqual(figures(bytes));
        // Everything else too (strategy counters, simulated guest CPU, metadata, per-domain
        // figures), but for what depends on how contents order and hash.
        const diff = [...new Set(differences(withoutMode(fp), withoutMode(bytes)).map((p) => p.replace(/\[\d+\]/g, '[]')))];
        expect(diff.filter((p) => !ORDER_DEPENDENT.test(p))).toEqual([]);
        if (strategy === 'inline' || strategy === 'none') expect(diff).toEqual([]);
        // Each page read back is what its fingerprint should give, at the end and at the samples.
        const v = fp.verify!;
        expect(v.differences).toEqual([]);
        expect(v.samples.differences).toEqual([]);
        expect(v.unreadable).toEqual([]);
        expect(v.samples.pagesVerified).toBeGreaterThan(0);
        if (fp.failures.length === 0) {
          expect(v.end.pagesVerified).toBe(fp.totals.guestPages);
          expect(v.passed).toBe(true);
        } else {
          // Guests that failed (ENOMEM at boot, in both modes alike) are not verified; the others are.
          expect(v.guests.notVerified.map((g) => g.guest).sort()).toEqual(fp.failures.map((f) => f.guest).sort());
          expect(v.end.pagesDiffered).toBe(0);
        }
        // The model kept no 4 KiB copy of any page.
        expect(v.model.exactPages).toBe(0);
      }, 60_000);
    }
  }

  it('differs where a store leaves a page as it was in bytes: ksm-cow-lazy.json writes byte 5 into pages of pattern 5', async () => {
    const s = await loadExample('ksm-cow-lazy.json');
    const noOps = noOpStores(s);
    // vm-0 gfn 4 at offset 100 and vm-1 gfn 4 at offset 200: [5], the pattern the pages hold.
    expect(noOps.map((i) => s.steps[i])).toEqual([
      { op: 'write', guest: 'vm-0', gfn: 4, offset: 100, bytes: [5] },
      { op: 'write', guest: 'vm-1', gfn: 4, offset: 200, bytes: [5] },
    ]);
    expect(cases.filter(([, c]) => noOpStores(c).length > 0).map(([n]) => n)).toEqual(['ksm-cow-lazy.json']);
    const bytes = await runScenario(s);
    const fp = await runScenario(fingerprints(s), { verify: true });
    // In bytes both pages still hold pattern 5: KSM merges vm-0's back into the KSM page after
    // vm-0's writes, and the two into one page at the end (1 shared + 1 sharing, 496 frames);
    // on fingerprints each is a content of its own (0 + 0, 497 frames).
    const at = (r: Report, label: string) => r.checkpoints.find((c) => c.label === label)!.totals;
    expect([at(bytes, 'vm-0-scanned').pagesSharing, at(fp, 'vm-0-scanned').pagesSharing]).toEqual([32, 31]);
    expect([at(bytes, 'settled').pagesShared, at(bytes, 'settled').pagesSharing]).toEqual([1, 1]);
    expect([at(fp, 'settled').pagesShared, at(fp, 'settled').pagesSharing]).toEqual([0, 0]);
    expect([bytes.totals.machineFramesUsed, fp.totals.machineFramesUsed]).toEqual([496, 497]);
    // Every other figure up to the first of them agrees, and the faults throughout.
    expect({ ...at(fp, 'vm-0-written'), dedupCpuNs: 0 }).toEqual({ ...at(bytes, 'vm-0-written'), dedupCpuNs: 0 });
    expect(fp.totals.cowFaults).toBe(bytes.totals.cowFaults);
    expect(fp.verify!.passed).toBe(true);
  });
});

describe('--verify on fingerprints', () => {
  it('finds a frame changed behind the hypervisor and names the page', async () => {
    const s = fingerprints(tinyScenario({ durationS: 1, sampleIntervalS: 0.25 }));
    let corrupted = -1;
    const r = await runScenario(s, {
      verify: true,
      beforeVerify: (hv) => {
        expect(hv.memory).toBeInstanceOf(FingerprintMemory);
        // The last page of the first guest: private data, a frame of its own.
        const dom = hv.domains()[0]!.id;
        const table = hv.p2m.table(dom)!;
        const gfn = table.size - 1;
        corrupted = gfn;
        hv.memory.write(table.mfn(gfn as Parameters<typeof table.mfn>[0]), 100, Uint8Array.of(1, 2, 3), 0, 3);
      },
    });
    expect(r.verify!.passed).toBe(false);
    expect(r.verify!.end.pagesDiffered).toBe(1);
    expect(r.verify!.differences).toEqual([expect.objectContaining({ guest: 'g-0', gfn: corrupted })]);
    // The difference is in the fingerprint's encoding, the first 8 bytes of the generated page.
    expect(r.verify!.differences[0]!.offset).toBeLessThan(8);
  });
});

describe('pagevisor run --contents', () => {
  /** Runs the CLI on buffers. */
  async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const code = await main(argv, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t), isTTY: false } });
    return { code, stdout, stderr };
  }

  it('overrides machine.contents; the summary and the report say it', async () => {
    const file = new URL('ksm-merge.json', dir).pathname;
    const a = await cli('run', file, '--contents', 'fingerprints', '--json');
    expect(a.code).toBe(ExitCode.ok);
    const report = JSON.parse(a.stdout) as Report;
    expect(report.config.machine.contents).toBe('fingerprints');
    expect(formatSummary(report)).toMatch(/^machine 8 MiB \(2,048 frames, fingerprints\), buddy allocator, ksm dedup$/m);
    const b = await cli('run', file);
    expect(b.code).toBe(ExitCode.ok);
    expect(b.stdout).toMatch(/^machine 8 MiB \(2,048 frames\), buddy allocator, ksm dedup$/m);
    expect((JSON.parse((await cli('run', file, '--contents', 'bytes', '--json')).stdout) as Report).config.machine.contents).toBe('bytes');
  });

  it('refuses swap compression with fingerprints, naming both fields, and an unknown mode', async () => {
    const a = await cli('run', new URL('overcommit.json', dir).pathname, '--contents', 'fingerprints', '--compression', 'lz4');
    expect(a.code).toBe(ExitCode.usage);
    expect(a.stderr).toMatch(/machine\.swap\.compression: "lz4" cannot be simulated with machine\.contents "fingerprints"/);
    const b = await cli('run', new URL('ksm-merge.json', dir).pathname, '--contents', 'pages');
    expect(b.code).toBe(ExitCode.usage);
    expect(b.stderr).toMatch(/--contents.*bytes, fingerprints/);
  });
});
