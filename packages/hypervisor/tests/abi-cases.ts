import { createDedup } from '@pagevisor/dedup';
import { decodeRequest, decodeResponse, encodeRequest, HypercallClient, Madvise, TMEM_POOL_PERSIST, type HypercallOp, type HypercallRequest, type HypercallResponse } from '@pagevisor/hypercall-abi';
import { createEvictionPolicy, FaultPlan, MemorySwapDevice, SharedSwap, WriteFault, type WriteFaultValue } from '@pagevisor/swap';
import { asGfn, DOMID_CONTROL, DOMID_SELF, HypervisorError, PAGE_SIZE, type DedupIndex, type DomId, type HypercallPort, type SwapBackend } from '@pagevisor/types';
import { Hypervisor } from '../src/hypervisor.js';
import { observableState, type ObservableState } from '../src/observable-state.js';
import { pageOf } from './pages.js';

/** Frames of the hosts these tests build, unless a test asks for another size. */
export const FRAMES = 32;

/**
 * A fault plan the test switches on and off at the moment it wants: while `failReads` is set
 * every read fails with EIO, while `failWrites` is not `none` every write fails that way.
 */
export class SwitchFaults extends FaultPlan {
  failReads = false;
  failWrites: WriteFaultValue = WriteFault.none;

  override nextReadFails(): boolean {
    return this.failReads || super.nextReadFails();
  }

  override nextWrite(): WriteFaultValue {
    return this.failWrites !== WriteFault.none ? this.failWrites : super.nextWrite();
  }

  /** Every fault off. */
  heal(): void {
    this.failReads = false;
    this.failWrites = WriteFault.none;
  }
}

/** Swap of a test host: one area for all domains, or one per domain. */
export interface TestSwap {
  readonly mode: 'shared' | 'per-domain';
  /** Slots of the shared area, or of each domain's area (default 64). */
  readonly slots?: number | ((dom: DomId) => number);
}

/** How to build a test host. */
export interface HostOptions {
  readonly frames?: number;
  /** De-duplication (default `none`: every populated page has a frame of its own). */
  readonly dedup?: DedupIndex;
  readonly swap?: TestSwap;
  /** Slots of the tmem store (default: no tmem). */
  readonly tmem?: number;
  /** Build guests A and B (default true). */
  readonly guests?: boolean;
}

/** A test host: the hypervisor, its clients and its swap fault switches. */
export interface Host {
  readonly hv: Hypervisor;
  /** Guest A (dom 1): max 8 pages, 16 gfns, gfns 0..3 hold pageOf(10 + gfn). */
  readonly a: DomId;
  /** Guest B (dom 2): max 8 pages, 16 gfns, gfns 0..3 hold pageOf(20 + gfn). */
  readonly b: DomId;
  /** Faults of the area holding `dom`'s pages (the shared area's in shared mode). */
  faultsOf(dom: DomId): SwitchFaults;
  /** While true, a new domain's per-domain swap area is refused with ENOSPC. */
  refuseAreas: boolean;
}

/** A domain id no domain has. */
export const NOBODY = 9 as DomId;

/** Builds a small host; see {@link Host} for the guests it starts with. */
export async function host(options: HostOptions = {}): Promise<Host> {
  const frames = options.frames ?? FRAMES;
  const faults = new Map<number, SwitchFaults>();
  let hv: Hypervisor | undefined;
  const state = { refuseAreas: false };
  const slotsOf = (dom: number): number => {
    const s = options.swap?.slots ?? 64;
    return typeof s === 'function' ? s(dom as DomId) : s;
  };
  const area = (key: number): SwapBackend => {
    const plan = new SwitchFaults();
    faults.set(key, plan);
    // Without slot de-duplication every store writes, so a write fault always bites.
    return new SharedSwap({ device: new MemorySwapDevice({ slots: slotsOf(key), faults: plan }), hashPage: (p) => hv!.memory.hashPage(p), dedup: false });
  };
  const swap = options.swap;
  hv = await Hypervisor.create({
    frames,
    dedup: options.dedup ?? createDedup('none'),
    ...(swap === undefined
      ? {}
      : {
          swap: {
            backend:
              swap.mode === 'shared'
                ? area(0)
                : (dom: DomId) => {
                    if (state.refuseAreas) throw new HypervisorError('ENOSPC', 'swap_area', `no room for an area of dom ${dom}`);
                    return area(dom);
                  },
            policy: createEvictionPolicy('clock', { frames, seed: 1 }),
            lowWatermark: 2,
            highWatermark: 4,
          },
        }),
    ...(options.tmem === undefined ? {} : { tmem: { pages: options.tmem } }),
  });
  let a = 1 as DomId;
  let b = 2 as DomId;
  if (options.guests ?? true) {
    a = guest(hv, 8, 16, [10, 11, 12, 13]);
    b = guest(hv, 8, 16, [20, 21, 22, 23]);
  }
  const h: Host = {
    hv,
    a,
    b,
    faultsOf: (dom) => faults.get(swap?.mode === 'shared' ? 0 : dom)!,
    get refuseAreas() {
      return state.refuseAreas;
    },
    set refuseAreas(v: boolean) {
      state.refuseAreas = v;
    },
  };
  return h;
}

/** A new domain whose gfn i holds pageOf(seeds[i]). */
export function guest(hv: Hypervisor, maxPages: number, gfnCount: number, seeds: readonly number[], trustGroup = 0): DomId {
  const dom = hv.createDomain({ maxPages, gfnCount, trustGroup });
  if (seeds.length > 0) hv.populatePhysmap(dom, seeds.map((_, i) => i));
  seeds.forEach((s, i) => hv.writePage(dom, asGfn(i), 0, pageOf(s), 0, PAGE_SIZE));
  return dom;
}

/** Pages `dom` out at `gfns` by hand (paging nominate + evict). */
export function pageOut(hv: Hypervisor, dom: DomId, gfns: readonly number[]): void {
  for (const g of gfns) {
    hv.pagingNominate(dom, asGfn(g));
    hv.pagingEvict(dom, asGfn(g));
  }
}

/** Issues `req` as `caller` through the hypervisor's dispatcher and decodes the response. */
export function raw(hv: Hypervisor, caller: DomId, req: HypercallRequest): HypercallResponse {
  return decodeResponse(req.op, hv.hypercall(caller, encodeRequest(req)));
}

/** Everything a refused hypercall must leave as it was. */
export type Snapshot = ObservableState;

/** Takes a {@link Snapshot} without touching anything (no guest access, no swap-in). */
export const snapshot = observableState;

/** Every broken invariant of the host, tmem's included. */
export function problems(hv: Hypervisor): string[] {
  return [...hv.audit(), ...(hv.tmem?.audit() ?? [])];
}

/**
 * A port that remembers which ops succeeded for which kind of caller (`control:op`, `guest:op`),
 * so a test can show each op's success path ran through the dispatcher.
 */
export class RecordingPort implements HypercallPort {
  constructor(
    private readonly hv: Hypervisor,
    private readonly successes: Set<string>,
  ) {}

  hypercall(caller: DomId, request: Uint8Array): Uint8Array {
    const response = this.hv.hypercall(caller, request);
    const op = decodeRequest(request).op;
    if (decodeResponse(op, response).rc >= 0) this.successes.add(`${caller === DOMID_CONTROL ? 'control' : 'guest'}:${op}`);
    return response;
  }
}

/** A client of `hv` for `caller` that records successes in `successes`. */
export function client(hv: Hypervisor, caller: DomId, successes: Set<string>): HypercallClient {
  return new HypercallClient(new RecordingPort(hv, successes), caller);
}

/**
 * A well-formed request of `op` aimed at domain `d` (and `o` where the op names a second domain:
 * the client of a share, the parent of a fork). Against a fresh {@link host} it may still be
 * refused by the handler: it is for decoding and privilege tests.
 */
export function template(op: HypercallOp, d: number, o: number): HypercallRequest {
  const key = { domid: d, poolId: 0, oid0: 1, oid1: 2, oid2: 3 };
  switch (op) {
    case 'increase_reservation':
      return { op, domid: d, nrExtents: 1, extentOrder: 0, memFlags: 0 };
    case 'decrease_reservation':
      return { op, domid: d, extentOrder: 0, gfns: [0] };
    case 'populate_physmap':
      return { op, domid: d, extentOrder: 0, memFlags: 0, gfns: [5] };
    case 'current_reservation':
    case 'maximum_reservation':
    case 'maximum_gpfn':
    case 'sharing_fork_reset':
    case 'domctl_destroydomain':
    case 'domctl_pausedomain':
    case 'domctl_unpausedomain':
      return { op, domid: d };
    case 'claim_pages':
      return { op, domid: d, nrPages: 6 };
    case 'get_sharing_freed_pages':
    case 'get_sharing_shared_pages':
    case 'sharing_audit':
      return { op, domid: DOMID_SELF };
    case 'read_page':
      return { op, domid: d, gfn: 0, offset: 0, length: 16 };
    case 'write_page':
      return { op, domid: d, gfn: 0, offset: 0, data: Uint8Array.of(1, 2, 3) };
    case 'madvise':
      return { op, domid: d, gfn: 0, count: 2, advice: Madvise.dontneed };
    case 'sharing_nominate_gfn':
    case 'sharing_debug_gfn':
    case 'paging_nominate':
    case 'paging_evict':
      return { op, domid: d, gfn: 0 };
    case 'sharing_share':
      return { op, sourceDomid: d, sourceGfn: 0, sourceHandle: 1, clientDomid: o, clientGfn: 0, clientHandle: 2 };
    case 'sharing_add_physmap':
      return { op, sourceDomid: d, sourceGfn: 0, sourceHandle: 1, clientDomid: o, clientGfn: 8 };
    case 'sharing_range_share':
      return { op, sourceDomid: d, clientDomid: o, firstGfn: 0, lastGfn: 3 };
    case 'sharing_fork':
      return { op, domid: d, parentDomid: o };
    case 'paging_prep':
      return { op, domid: d, gfn: 0, data: pageOf(1) };
    case 'tmem_new_pool':
      return { op, domid: d, flags: TMEM_POOL_PERSIST };
    case 'tmem_destroy_pool':
      return { op, domid: d, poolId: 0 };
    case 'tmem_put_page':
      return { op, ...key, index: 0, data: pageOf(2) };
    case 'tmem_get_page':
    case 'tmem_flush_page':
      return { op, ...key, index: 0 };
    case 'tmem_flush_object':
      return { op, ...key };
    case 'domctl_createdomain':
      return { op, domid: 0, maxPages: 4, gfnCount: 4, trustGroup: 0 };
    case 'domctl_max_mem':
      return { op, domid: d, maxMemKb: 64 };
    case 'domctl_sharing_control':
      return { op, domid: d, enable: 0 };
  }
}
