import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createDedup } from '@pagevisor/dedup';
import { formatFuzzStats, fuzzContext, fuzzHypervisor, HYPERCALL_OPS, mergeFuzzStats, newFuzzStats, UNDECODED, type FuzzContext, type FuzzStats } from '@pagevisor/hypercall-abi';
import { createEvictionPolicy, MemorySwapDevice, SharedSwap } from '@pagevisor/swap';
import { asGfn, DOMID_FIRST_RESERVED, HypervisorError, PAGE_SIZE, Prng, type DedupIndex, type DomId } from '@pagevisor/types';
import { Hypervisor } from './hypervisor.js';
import { snapshotState } from './model-check.js';
import type { HypervisorOptions } from './options.js';

/** fast-check runs per configuration; FUZZ_RUNS raises it. Calls per run: FUZZ_CALLS. */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 4);
const CALLS = Number(process.env['FUZZ_CALLS'] ?? 2500);
// A fixed seed by default, so the suite is repeatable; FUZZ_SEED explores others.
const SEED = Number(process.env['FUZZ_SEED'] ?? 20261127);
/** Ops drawn no valid or mutated requests for (comma-separated FUZZ_SKIP_OPS), e.g. while a known bug is fixed. */
const SKIP = (process.env['FUZZ_SKIP_OPS'] ?? '').split(',').filter((op) => op !== '');
const OPS = HYPERCALL_OPS.filter((op) => !SKIP.includes(op));

/** Machine frames without swap; with swap, fewer than the guests hold, so that pages go out (and prep has work). */
const FRAMES = 256;
const SWAP_FRAMES = 64;
/** Guest-physical pages of each guest: small, so that random gfns often land on populated pages. */
const GFNS = 64;
const GUESTS = 3;
const GUEST_PAGES = 32;
/** The fuzzer creates domains (domctl_createdomain); the harness destroys the newest beyond this. */
const MAX_DOMAINS = 6;
/** Domains it creates with a larger guest-physical space go too: every snapshot walks every p2m entry. */
const MAX_GFNS = 4 * GFNS;

interface Config {
  readonly name: string;
  readonly dedup: () => DedupIndex;
  readonly swap: boolean;
  readonly extra?: Partial<HypervisorOptions>;
}

const CONFIGS: readonly Config[] = [
  { name: 'inline dedup, tmem', dedup: () => createDedup('inline'), swap: false, extra: { tmem: { pages: 32 } } },
  {
    name: 'ksm, shared swap, tmem, uniform writes',
    dedup: () => createDedup('ksm', { pages_to_scan: 64 }),
    swap: true,
    extra: { tmem: { pages: 32, compression: 'lz4' }, mitigations: { uniformWrites: true } },
  },
];

interface Host {
  readonly hv: Hypervisor;
  readonly ctx: FuzzContext;
  /** Between calls: refresh the context, bound the domains, unpause, run the scanner. */
  readonly tick: () => void;
}

/** A page filled with `byte`. */
function filled(byte: number): Uint8Array {
  return new Uint8Array(PAGE_SIZE).fill(byte);
}

async function host(config: Config, seed: number): Promise<Host> {
  let hv: Hypervisor | undefined;
  const hashPage = (p: Uint8Array): number => hv!.memory.hashPage(p);
  const frames = config.swap ? SWAP_FRAMES : FRAMES;
  hv = await Hypervisor.create({
    frames,
    dedup: config.dedup(),
    ...(config.swap
      ? {
          swap: {
            backend: new SharedSwap({ device: new MemorySwapDevice({ slots: 512 }), hashPage }),
            policy: createEvictionPolicy('clock', { frames, seed }),
            lowWatermark: 4,
            highWatermark: 8,
          },
        }
      : {}),
    ...config.extra,
  });
  const h = hv;
  const addGuest = (): DomId => {
    const dom = h.createDomain({ maxPages: 96, gfnCount: GFNS });
    h.setDomainMergeable(dom, true);
    h.populatePhysmap(dom, Array.from({ length: GUEST_PAGES }, (_, g) => g));
    // A few contents every guest has (to share), the rest its own (to fill RAM and swap).
    for (let g = 0; g < GUEST_PAGES; g++) h.writePage(dom, asGfn(g), 0, filled(g < 8 ? g % 4 : 4 + ((dom * 37 + g) % 250)), 0, PAGE_SIZE);
    return dom;
  };
  const guests = Array.from({ length: GUESTS }, addGuest);
  const ctx = fuzzContext(GFNS, guests, [Math.max(...guests) + 100, DOMID_FIRST_RESERVED - 1]);
  const prng = new Prng(seed ^ 0x5eed);
  const dead: number[] = [];
  const tick = (): void => {
    const live = h.domains().map((d) => d.id as number);
    const big = (dom: number): boolean => h.domain('fuzz', dom as DomId).table.size > MAX_GFNS;
    for (let i = live.length - 1; i >= 0; i--) {
      const victim = live[i]!;
      if (live.length <= MAX_DOMAINS && !big(victim)) continue;
      try {
        h.destroyDomain(victim as DomId);
        dead.push(victim);
        live.splice(i, 1);
      } catch (e) {
        // A fork's parent cannot go before its fork: try the next one.
        if (!(e instanceof HypervisorError)) throw e;
      }
    }
    if (live.length < 2) live.push(addGuest());
    // An empty domain with room, for sharing_fork to have a child, and a fork, for sharing_fork_reset.
    if (live.length < MAX_DOMAINS && live.every((d) => h.currentReservation(d as DomId) > 0)) live.push(h.createDomain({ maxPages: 128, gfnCount: GFNS }));
    if (live.length < MAX_DOMAINS && h.domains().every((d) => d.parent === undefined)) {
      const child = h.createDomain({ maxPages: 128, gfnCount: GFNS });
      live.push(child);
      try {
        h.fork(child, live[0]! as DomId);
      } catch (e) {
        // Refused (the parent's sharing is off, or it is too big): the child stays an empty domain.
        if (!(e instanceof HypervisorError)) throw e;
      }
    }
    for (const d of h.domains()) if (d.paused && prng.nextFloat() < 0.5) h.unpauseDomain(d.id);
    ctx.guests = live;
    ctx.strangers = [...dead.slice(-4), 4242, DOMID_FIRST_RESERVED - 1];
    const wake = h.dedup.nextWakeNs?.() ?? Infinity;
    if (Number.isFinite(wake)) h.dedup.wake!(wake);
  };
  return { hv: h, ctx, tick };
}

const BATCH = 500;
/** Refusals checked to change nothing: a snapshot walks every p2m entry, twice a call. */
const SNAPSHOT_RATE = 0.25;

async function run(config: Config, seed: number, calls: number, batch: number): Promise<FuzzStats> {
  const { hv, ctx, tick } = await host(config, seed);
  return fuzzHypervisor(hv, new Prng(seed), calls, { ctx, batch, tick, tickEvery: 50, snapshot: () => snapshotState(hv), snapshotRate: SNAPSHOT_RATE, ops: OPS });
}

/** The report of a failed run; an audit failure is replayed with an audit after every call to name the call that broke the state. */
async function failureReport(config: Config, seed: number, stats: FuzzStats): Promise<string> {
  let report = `${config.name}, seed ${seed}:\n${formatFuzzStats(stats)}`;
  const f = stats.failures[0]!;
  if (f.kind === 'audit') {
    const replay = await run(config, seed, f.call + 1, 1);
    report += `\nreplayed with an audit after every call:\n${formatFuzzStats({ ...replay, byOp: {} })}`;
  }
  return report;
}

const total = newFuzzStats();

describe.each(CONFIGS)('fuzzing the hypercall gate ($name)', (config) => {
  it(`${RUNS} runs of ${CALLS} valid, mutated and garbage calls: no exception escapes, every rc is a known errno, refusals change nothing, audits stay clean`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer(), async (seed) => {
        const stats = await run(config, seed, CALLS, BATCH);
        if (stats.failures.length > 0) throw new Error(await failureReport(config, seed, stats));
        mergeFuzzStats(total, stats);
        expect(stats.audits).toBe(Math.ceil(CALLS / BATCH));
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  }, 120_000);
});

describe('fuzz coverage over every configuration', () => {
  it('reached every op, with successes and refusals, and every kind of decoding refusal', () => {
    expect(total.calls).toBe(RUNS * CALLS * CONFIGS.length);
    expect(total.failures).toEqual([]);
    const missing: string[] = [];
    for (const op of OPS) {
      const s = total.byOp[op];
      const refused = s ? Object.values(s.refused).reduce((a, b) => a + b, 0) : 0;
      if (!s || s.ok === 0 || refused === 0) missing.push(`${op}: ${s?.calls ?? 0} calls, ${s?.ok ?? 0} ok, ${refused} refused`);
    }
    expect(missing, formatFuzzStats(total)).toEqual([]);
    const undecoded = total.byOp[UNDECODED]!;
    expect(Object.keys(undecoded.refused).sort()).toEqual(['EFAULT', 'EINVAL', 'ENOSYS']);
    for (const errno of ['EPERM', 'ESRCH', 'EINVAL', 'EEXIST', 'ENOENT']) expect(total.refusals[errno], errno).toBeGreaterThan(0);
    // At least a third of the calls never reach a handler: the decoder is fuzzed as hard as the handlers.
    expect(total.malformed).toBeGreaterThan(total.calls / 3);
  });
});
