import { HypervisorError, INVALID_MFN, P2M_TYPE_NAMES, P2mType, PAGE_SIZE, type DomId, type Gfn, type Mfn } from '@pagevisor/types';
import type { Domain, HostCore } from './core.js';
import type { PagerHost } from './pager.js';

// The paging ops (XENMEM_paging_op, as Xen's mem_paging.c) and what the pager asks of the host
// when it brings a page back: swap-in is an allocation, and goes through de-duplication.

/**
 * Nominates `gfn` for paging out (XENMEM_paging_op_nominate): a private page becomes
 * paging_out and keeps its frame; a guest write before `pagingEvict` cancels the nomination.
 */
export function pagingNominate(h: HostCore, dom: DomId, gfn: Gfn): void {
  const op = 'paging_nominate';
  const d = pagingDomain(h, op, dom, gfn);
  const t = d.table.type(gfn);
  if (t !== P2mType.ram_rw) {
    throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} is ${P2M_TYPE_NAMES[t]}: only a private ram_rw page can be nominated`);
  }
  d.table.set(gfn, d.table.mfn(gfn), P2mType.paging_out);
}

/** Evicts a nominated page to swap (XENMEM_paging_op_evict): paging_out becomes paged, the frame is freed. */
export function pagingEvict(h: HostCore, dom: DomId, gfn: Gfn): void {
  const op = 'paging_evict';
  const d = pagingDomain(h, op, dom, gfn);
  const t = d.table.type(gfn);
  if (t !== P2mType.paging_out) {
    throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} is ${P2M_TYPE_NAMES[t]}, not paging_out (nominate it first; a write cancels the nomination)`);
  }
  h.pager!.evictPage(op, d.id, gfn);
}

/**
 * Brings a paged-out page back (XENMEM_paging_op_prep, and with `data` the load): allocates a
 * frame and fills it with `data` (the pager's copy) or, without it, from the swap slot. The
 * entry is paging_in while the frame is filled, then ram_rw.
 */
export function pagingPrep(h: HostCore, dom: DomId, gfn: Gfn, data?: Uint8Array): void {
  const op = 'paging_prep';
  const d = pagingDomain(h, op, dom, gfn);
  const t = d.table.type(gfn);
  if (t !== P2mType.paged) throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} is ${P2M_TYPE_NAMES[t]}, not paged`);
  if (data !== undefined && data.length !== PAGE_SIZE) {
    throw new HypervisorError('EINVAL', op, `data must be ${PAGE_SIZE} bytes, got ${data.length}`);
  }
  if (!h.pager!.ensureFree(1)) throw new HypervisorError('ENOMEM', op, `no free machine frame for dom ${dom} gfn ${gfn}`);
  // Evicting to make room may not touch this entry: it is paged already.
  h.pager!.faultIn(op, d.id, gfn, data);
}

function pagingDomain(h: HostCore, op: string, dom: DomId, gfn: Gfn): Domain {
  const d = h.domain(op, dom);
  h.checkGfn(op, d, gfn);
  if (h.pager === undefined) throw new HypervisorError('EOPNOTSUPP', op, 'this hypervisor has no swap area to page to');
  return d;
}

/** What the pager asks of the host: sharing a resident frame on swap-in, and the dedup index. */
export function pagerHost(h: HostCore): PagerHost {
  const domainOf = (dom: DomId): Domain => h.domainsById.get(dom)!;
  return {
    memory: h.memory,
    frames: h.frames,
    p2m: h.p2m,
    dedup: h.dedup,
    zeroMfn: h.zeroMfn,
    frameGone: (mfn) => {
      h.handles[mfn] = 0;
    },
    shareIn: (dom, gfn, mfn) => shareIn(h, domainOf(dom), gfn, mfn),
    dedupIn: (dom, gfn, page, hash) => {
      const d = domainOf(dom);
      if (!h.mayDedup(d, page)) return INVALID_MFN;
      const match = h.dedup.lookup(page, hash, dom);
      return match !== INVALID_MFN && shareIn(h, d, gfn, match) ? match : INVALID_MFN;
    },
    swappedIn: (dom, mfn, page, hash) => {
      if (h.mayDedup(domainOf(dom), page)) h.dedup.insert(mfn, hash, 'miss');
    },
  };
}

/**
 * Maps `d`'s paged page `gfn` to resident frame `mfn`, which holds its content, shared (the
 * pager keeps or releases the slot); false, changing nothing, when `d` may not share `mfn`.
 */
function shareIn(h: HostCore, d: Domain, gfn: Gfn, mfn: Mfn): boolean {
  if (!h.mayShareFrame(d, mfn)) return false;
  if (mfn !== h.zeroMfn) h.makeShared(mfn);
  h.mapShared(d, gfn, mfn);
  return true;
}
