import { asGfn, P2mType } from '@pagevisor/types';
import type { Hypervisor } from './hypervisor.js';

/** What {@link observableState} records of one domain. */
export interface DomainState {
  readonly id: number;
  /** The domain's figures (tot/max pages, pages by type, faults, simulated CPU). */
  readonly stats: unknown;
  paused: boolean;
  readonly sharing: boolean;
  readonly trustGroup: number;
  readonly claim: number;
  /** The fork graph: the domain's parent and its number of live forks. */
  readonly parent: number | undefined;
  readonly forks: number;
  /** The strategy's counters of this domain (KSM's rmap_items, merging_pages ...), if it keeps any. */
  readonly dedup: unknown;
  /** gfn, p2m type, mfn (or swap slot), content hash, sharing handle: per populated gfn. */
  readonly entries: number[];
}

/** Everything a refused operation must leave as it was. */
export interface ObservableState {
  readonly totals: unknown;
  readonly freeFrames: number;
  readonly domains: DomainState[];
  /** The strategy's counters and tunables. */
  readonly dedup: { readonly stats: unknown; readonly knobs: unknown };
  /**
   * What the swap area holds: slots and device bytes in use. Not its cumulative I/O counters: a
   * refused call may have tried I/O (a swap-in that failed, an eviction the area refused, a
   * fork's slot copy undone), and those counters report what was tried.
   */
  readonly swap: { readonly swapSlotsUsed: number; readonly diskBytesUsed: number } | undefined;
  /** tmem's figures and each domain's pools and pages. */
  readonly tmem: unknown;
}

/**
 * The whole observable state of `hv`, read without touching anything (no guest access, no
 * swap-in, no eviction-policy update): the host's figures, every domain's figures, claim, pause
 * and sharing flags, trust group and fork links, every p2m entry with its frame's content hash
 * and sharing handle, the strategy's counters (host-wide and per domain) and knobs, what the swap
 * area holds, and the tmem figures. Two equal states (`toEqual`, or equal {@link observableDigest}s) mean no
 * guest, toolstack or strategy could tell the host changed.
 */
export function observableState(hv: Hypervisor): ObservableState {
  const domains = hv.domains().map((d): DomainState => {
    const entries: number[] = [];
    for (let g = 0; g < d.table.size; g++) {
      const t = d.table.type(asGfn(g));
      if (t === P2mType.invalid) continue;
      const mfn = d.table.mfn(asGfn(g));
      const framed = t === P2mType.ram_rw || t === P2mType.ram_shared || t === P2mType.paging_out;
      entries.push(g, t, mfn, framed ? hv.memory.hashFrame(mfn) : -1, framed ? hv.handleOf(mfn) : -1);
    }
    return {
      id: d.id,
      stats: hv.domainStats(d.id),
      paused: d.paused,
      sharing: d.sharing,
      trustGroup: d.trustGroup,
      claim: d.claim,
      parent: d.parent,
      forks: d.forks,
      dedup: hv.dedup.domainStats?.(d.id),
      entries,
    };
  });
  const tmem = hv.tmem;
  const swap = hv.swapStats();
  return {
    totals: hv.totals(),
    freeFrames: hv.frames.freeFrames,
    domains,
    dedup: { stats: { ...hv.dedup.stats() }, knobs: hv.dedup.knobs?.() },
    swap: swap === undefined ? undefined : { swapSlotsUsed: swap.swapSlotsUsed, diskBytesUsed: swap.diskBytesUsed },
    tmem: tmem === undefined ? undefined : { stats: tmem.stats(), pools: hv.domains().map((d) => [d.id, tmem.domainPools(d.id), tmem.domainPages(d.id)]) },
  };
}

/** {@link observableState} as one string, cheap to keep and compare. */
export function observableDigest(hv: Hypervisor): string {
  return JSON.stringify(observableState(hv));
}
