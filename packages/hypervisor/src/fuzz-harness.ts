import { createDedup } from '@pagevisor/dedup';
import { fuzzContext, fuzzHypervisor, type FuzzContext, type FuzzStats, type HypercallOp } from '@pagevisor/hypercall-abi';
import { createEvictionPolicy, MemorySwapDevice, SharedSwap, type EvictionPolicyName } from '@pagevisor/swap';
import { asGfn, DOMID_FIRST_RESERVED, HypervisorError, mixSeed, PAGE_SIZE, Prng, type DomId } from '@pagevisor/types';
import { Hypervisor } from './hypervisor.js';
import { observableDigest } from './observable-state.js';
import type { HypervisorOptions } from './options.js';

/**
 * The hypercall fuzzing harness shared by the fuzz test and `tools/fuzz-hypercalls.mjs`: small
 * hypervisors (so that random gfns land on populated pages and swap has work) with guests that
 * share a few contents, and a tick that keeps a bounded, changing set of domains for the fuzzer
 * (destroying the surplus, adding guests, empty domains and a fork), unpauses, and runs the
 * scanner.
 */

/** Machine frames without swap; with swap, fewer than the guests hold, so that pages go out. */
export const FUZZ_FRAMES = 256;
export const FUZZ_SWAP_FRAMES = 64;
/** Guest-physical pages of each guest: few, so that random gfns often land on populated pages. */
const GFNS = 64;
const GUESTS = 3;
const GUEST_PAGES = 32;
/** The fuzzer creates domains (domctl_createdomain); the tick destroys the newest beyond this ... */
const MAX_DOMAINS = 6;
/** ... and those with a larger guest-physical space: every snapshot walks every p2m entry. */
const MAX_GFNS = 4 * GFNS;
/** Calls between ticks. */
const TICK_EVERY = 50;

/** A named hypervisor configuration to fuzz. */
export interface FuzzConfig {
  readonly name: string;
  readonly frames: number;
  /** The hypervisor's options but `frames`; `hashPage` hashes with the machine's hash. */
  readonly options: (hashPage: (page: Uint8Array) => number, seed: number) => Omit<HypervisorOptions, 'frames'>;
}

function sharedSwap(hashPage: (page: Uint8Array) => number, seed: number, policy: EvictionPolicyName): HypervisorOptions['swap'] {
  return {
    backend: new SharedSwap({ device: new MemorySwapDevice({ slots: 512 }), hashPage }),
    policy: createEvictionPolicy(policy, { frames: FUZZ_SWAP_FRAMES, seed }),
    lowWatermark: 4,
    highWatermark: 8,
  };
}

/** The configurations: every strategy, with and without swap, tmem and the mitigations. */
export const FUZZ_CONFIGS: readonly FuzzConfig[] = [
  { name: 'inline', frames: FUZZ_FRAMES, options: () => ({ dedup: createDedup('inline'), tmem: { pages: 32 } }) },
  {
    name: 'ksm-swap',
    frames: FUZZ_SWAP_FRAMES,
    options: (hashPage, seed) => ({
      dedup: createDedup('ksm', { pages_to_scan: 64 }),
      swap: sharedSwap(hashPage, seed, 'clock'),
      tmem: { pages: 32, compression: 'lz4' },
      mitigations: { uniformWrites: true },
    }),
  },
  {
    name: 'esx-swap',
    frames: FUZZ_SWAP_FRAMES,
    options: (hashPage, seed) => ({
      dedup: createDedup('esx', { populateZero: true }),
      allocator: 'freelist',
      numaNodes: 2,
      swap: {
        // Per-domain areas: the baseline without slot sharing.
        backend: () => new SharedSwap({ device: new MemorySwapDevice({ slots: 256 }), hashPage, dedup: false }),
        policy: createEvictionPolicy('lru', { frames: FUZZ_SWAP_FRAMES, seed }),
        lowWatermark: 4,
        highWatermark: 8,
      },
      tmem: { pages: 16, compression: 'deflate' },
    }),
  },
  {
    name: 'inline-swap',
    frames: FUZZ_SWAP_FRAMES,
    options: (hashPage, seed) => ({ dedup: createDedup('inline'), swap: sharedSwap(hashPage, seed, 'random'), mitigations: { zeroPagesOnly: true } }),
  },
];

/** The configuration named `name`; undefined when there is none. */
export function fuzzConfig(name: string): FuzzConfig | undefined {
  return FUZZ_CONFIGS.find((c) => c.name === name);
}

/** A hypervisor to fuzz, the fuzzer's context and the tick to run between calls. */
export interface FuzzHost {
  readonly hv: Hypervisor;
  readonly ctx: FuzzContext;
  readonly tick: () => void;
}

/** A fresh hypervisor of `config` with three populated guests, seeded by `seed`. */
export async function fuzzHost(config: FuzzConfig, seed: number): Promise<FuzzHost> {
  let created: Hypervisor | undefined;
  const hashPage = (p: Uint8Array): number => created!.memory.hashPage(p);
  const hv = await Hypervisor.create({ frames: config.frames, ...config.options(hashPage, seed) });
  created = hv;
  const addGuest = (): DomId => {
    const dom = hv.createDomain({ maxPages: 96, gfnCount: GFNS });
    hv.setDomainMergeable(dom, true);
    hv.populatePhysmap(dom, Array.from({ length: GUEST_PAGES }, (_, g) => g));
    // A few contents every guest has (to share), the rest its own (to fill RAM and swap).
    for (let g = 0; g < GUEST_PAGES; g++) {
      hv.writePage(dom, asGfn(g), 0, new Uint8Array(PAGE_SIZE).fill(g < 8 ? g % 4 : 4 + ((dom * 37 + g) % 250)), 0, PAGE_SIZE);
    }
    return dom;
  };
  const guests = Array.from({ length: GUESTS }, addGuest);
  const ctx = fuzzContext(GFNS, guests, [Math.max(...guests) + 100, DOMID_FIRST_RESERVED - 1]);
  const prng = new Prng(mixSeed(seed, 0x71c4));
  const dead: number[] = [];
  const tick = (): void => {
    const live = hv.domains().map((d) => d.id as number);
    for (let i = live.length - 1; i >= 0; i--) {
      const victim = live[i]! as DomId;
      if (live.length <= MAX_DOMAINS && hv.domain('fuzz', victim).table.size <= MAX_GFNS) continue;
      try {
        hv.destroyDomain(victim);
        dead.push(victim);
        live.splice(i, 1);
      } catch (e) {
        // A fork's parent cannot go before its fork: try the next one.
        if (!(e instanceof HypervisorError)) throw e;
      }
    }
    if (live.length < 2) live.push(addGuest());
    // An empty domain with room, for sharing_fork to have a child, and a fork, for sharing_fork_reset.
    if (live.length < MAX_DOMAINS && live.every((d) => hv.currentReservation(d as DomId) > 0)) live.push(hv.createDomain({ maxPages: 128, gfnCount: GFNS }));
    if (live.length < MAX_DOMAINS && hv.domains().every((d) => d.parent === undefined)) {
      const child = hv.createDomain({ maxPages: 128, gfnCount: GFNS });
      live.push(child);
      try {
        hv.fork(child, live[0]! as DomId);
      } catch (e) {
        // Refused (the parent's sharing is off, or it is too big): the child stays an empty domain.
        if (!(e instanceof HypervisorError)) throw e;
      }
    }
    for (const d of hv.domains()) if (d.paused && prng.nextFloat() < 0.5) hv.unpauseDomain(d.id);
    ctx.guests = live;
    ctx.strangers = [...dead.slice(-4), 4242, DOMID_FIRST_RESERVED - 1];
    const wake = hv.dedup.nextWakeNs?.() ?? Infinity;
    if (Number.isFinite(wake)) hv.dedup.wake!(wake);
  };
  return { hv, ctx, tick };
}

/** Options of {@link fuzzEpisode}. */
export interface FuzzEpisodeOptions {
  /** Calls between audits. */
  readonly batch: number;
  /** Fraction of calls whose refusal is checked to change nothing (a snapshot walks every p2m entry, twice a call). */
  readonly snapshotRate: number;
  /** Ops to draw requests for (default every op). */
  readonly ops?: readonly HypercallOp[];
}

/**
 * `calls` valid, mutated and garbage hypercalls at a fresh {@link fuzzHost} of `config`, seeded
 * by `seed` (one seed, one run: a failure replays with its seed, `calls` up to the failing call
 * and `batch` 1 to audit after every call).
 */
export async function fuzzEpisode(config: FuzzConfig, seed: number, calls: number, opts: FuzzEpisodeOptions): Promise<FuzzStats> {
  const { hv, ctx, tick } = await fuzzHost(config, seed);
  return fuzzHypervisor(hv, new Prng(seed), calls, {
    ctx,
    batch: opts.batch,
    tick,
    tickEvery: TICK_EVERY,
    snapshot: () => observableDigest(hv),
    snapshotRate: opts.snapshotRate,
    ...(opts.ops === undefined ? {} : { ops: opts.ops }),
  });
}
