import { HypervisorError, P2mType, type DedupHost, type DomId, type Gfn, type Mfn } from '@pagevisor/types';
import { writableFrame } from './access.js';
import type { HostCore } from './core.js';
import { dropPages, MADV_DONTNEED } from './memory-ops.js';

// What a de-duplication strategy sees of the host (merge, unmerge, its clock) and the advice a
// guest gives it (madvise, prctl), as Linux's KSM sees the mm it scans.

/** Linux `MADV_MERGEABLE`. */
export const MADV_MERGEABLE = 12;
/** Linux `MADV_UNMERGEABLE`. */
export const MADV_UNMERGEABLE = 13;

/** The host a strategy is attached to. */
export function dedupHost(h: HostCore): DedupHost {
  return {
    memory: h.memory,
    frames: h.frames,
    p2m: h.p2m,
    zeroMfn: h.zeroMfn,
    costModel: h.costModel,
    numaNodes: h.numaNodes,
    nodeOf: (mfn) => h.nodeOf(mfn),
    merge: (dom, gfn, target) => mergePage(h, dom, gfn, target),
    unmerge: (dom, gfn) => unmergePage(h, dom, gfn),
    ensureFree: (n) => h.frames.freeFrames >= n || (h.pager?.ensureFree(n) ?? false),
    chargeCpu: (ns) => {
      h.dedupCpuNs += ns;
    },
    groupOf: (dom) => h.domainsById.get(dom)?.trustGroup ?? 0,
  };
}

/**
 * Linux madvise on `count` pages from `gfn`: MADV_MERGEABLE / MADV_UNMERGEABLE go to the dedup
 * strategy ({@link advise}); MADV_DONTNEED drops the pages' contents: they read as zeros and get
 * a frame again on their next write (populate-on-demand entries), still counted as held.
 */
export function madvise(h: HostCore, dom: DomId, gfn: Gfn, count: number, advice: number): void {
  if (advice === MADV_MERGEABLE || advice === MADV_UNMERGEABLE) {
    advise(h, dom, gfn, count, advice === MADV_MERGEABLE);
    return;
  }
  h.domain('madvise', dom);
  if (advice !== MADV_DONTNEED) throw new HypervisorError('EINVAL', 'madvise', `unknown advice ${advice}`);
  dropPages(h, dom, gfn, count);
}

/**
 * Marks `count` pages from `start` of `dom` mergeable or not (MADV_MERGEABLE /
 * MADV_UNMERGEABLE); a scanning strategy then scans them, or unmerges them. Strategies that do
 * not scan accept and ignore the advice, so one scenario runs under every strategy.
 */
export function advise(h: HostCore, dom: DomId, start: Gfn, count: number, mergeable: boolean): void {
  const op = mergeable ? 'madvise_mergeable' : 'madvise_unmergeable';
  h.checkRange(op, h.domain(op, dom), start, count);
  h.dedup.advise?.(dom, start, count, mergeable);
}

/** Marks all of `dom` mergeable or not, present and future pages (PR_SET_MEMORY_MERGE). */
export function setDomainMergeable(h: HostCore, dom: DomId, on: boolean): void {
  h.domain('set_memory_merge', dom);
  h.dedup.setDomainMergeable?.(dom, on);
}

/** Wakes the scanning strategy (one event on the simulated clock): a new scanner pass for uniform writes. */
export function wakeDedup(h: HostCore, nowNs: number): void {
  h.dedup.wake?.(nowNs);
  h.scanEpoch++;
}

/** DedupHost.merge: maps `dom`'s `gfn` to `target` shared, when their contents are equal. */
function mergePage(h: HostCore, dom: DomId, gfn: Gfn, target: Mfn): boolean {
  const d = h.domainsById.get(dom);
  if (d === undefined || gfn < 0 || gfn >= d.table.size) return false;
  const t = d.table.type(gfn);
  const cur = d.table.mfn(gfn);
  if ((t !== P2mType.ram_rw && t !== P2mType.ram_shared) || cur === target) return false;
  if (target < 0 || target >= h.frames.totalFrames || h.frames.isFree(target)) return false;
  if (!h.mayShareFrame(d, target)) return false;
  h.dedupCpuNs += h.costModel.pageCompareNs;
  if (!h.memory.framesEqual(cur, target)) return false;
  h.remapShared(d, gfn, target);
  h.dedupCpuNs += h.costModel.p2mUpdateNs;
  return true;
}

/** DedupHost.unmerge: gives `dom`'s `gfn` a private copy if it maps a shared frame. */
function unmergePage(h: HostCore, dom: DomId, gfn: Gfn): boolean {
  const d = h.domainsById.get(dom);
  if (d === undefined || gfn < 0 || gfn >= d.table.size || d.table.type(gfn) !== P2mType.ram_shared) return true;
  try {
    const mfn = writableFrame(h, d, gfn, false);
    // The new private frame is a guest page like any other: the eviction policy tracks it.
    h.pager?.touch(mfn);
    return true;
  } catch (e) {
    if (e instanceof HypervisorError && e.errnoName === 'ENOMEM') return false;
    throw e;
  }
}
