import type { HypercallHandler, TmemOid } from '@pagevisor/hypercall-abi';
import { asGfn, DOMID_CONTROL, HypervisorError, PAGE_SIZE, type DomId, type Gfn } from '@pagevisor/types';
import * as access from './access.js';
import * as advising from './dedup-host.js';
import { auditHypervisor } from './audit.js';
import type { HostCore } from './core.js';
import * as mem from './memory-ops.js';
import * as paging from './paging.js';
import * as sharing from './sharing.js';

/**
 * The hypervisor as the hypercall dispatcher sees it: the same operations, each first checking
 * privilege, else EPERM. The control domain may act on any domain; a guest acts only on itself,
 * so it can read another domain's memory only through a share the control domain made.
 * Domain control, claims, the audit and the host-wide sharing figures are the control domain's
 * alone (the figures would tell a guest when others' pages merge).
 */
export class AbiHandler implements HypercallHandler {
  constructor(private readonly h: HostCore) {}

  private permit(op: string, caller: DomId, target: DomId): void {
    if (!mayActOn(caller, target)) {
      throw new HypervisorError('EPERM', op, `dom ${caller} may not act on dom ${target}`);
    }
  }

  private controlOnly(op: string, caller: DomId): void {
    if (caller !== DOMID_CONTROL) throw new HypervisorError('EPERM', op, `dom ${caller} is not the control domain`);
  }

  increaseReservation(caller: DomId, domid: DomId, nrExtents: number, extentOrder: number, memFlags: number): number[] {
    this.permit('increase_reservation', caller, domid);
    return mem.increaseReservation(this.h, domid, nrExtents, extentOrder, memFlags);
  }

  decreaseReservation(caller: DomId, domid: DomId, gfns: readonly number[], extentOrder: number): number {
    this.permit('decrease_reservation', caller, domid);
    return mem.decreaseReservation(this.h, domid, gfns, extentOrder);
  }

  populatePhysmap(caller: DomId, domid: DomId, gfns: readonly number[], extentOrder: number, memFlags: number): number {
    this.permit('populate_physmap', caller, domid);
    return mem.populatePhysmap(this.h, domid, gfns, extentOrder, memFlags);
  }

  currentReservation(caller: DomId, domid: DomId): number {
    this.permit('current_reservation', caller, domid);
    return mem.currentReservation(this.h, domid);
  }

  maximumReservation(caller: DomId, domid: DomId): number {
    this.permit('maximum_reservation', caller, domid);
    return mem.maximumReservation(this.h, domid);
  }

  readPage(caller: DomId, domid: DomId, gfn: Gfn, offset: number, length: number): Uint8Array {
    this.permit('read_page', caller, domid);
    const out = new Uint8Array(length);
    access.readPage(this.h, domid, gfn, offset, out, 0, length);
    return out;
  }

  writePage(caller: DomId, domid: DomId, gfn: Gfn, offset: number, data: Uint8Array): void {
    this.permit('write_page', caller, domid);
    access.writePage(this.h, domid, gfn, offset, data, 0, data.length);
  }

  nominateGfn(caller: DomId, domid: DomId, gfn: Gfn): number {
    this.permit('sharing_nominate_gfn', caller, domid);
    return sharing.nominateGfn(this.h, domid, gfn);
  }

  share(caller: DomId, sourceDomid: DomId, sourceGfn: Gfn, sourceHandle: number, clientDomid: DomId, clientGfn: Gfn, clientHandle: number): void {
    this.permit('sharing_share', caller, sourceDomid);
    this.permit('sharing_share', caller, clientDomid);
    sharing.share(this.h, sourceDomid, asGfn(sourceGfn), sourceHandle, clientDomid, asGfn(clientGfn), clientHandle);
  }

  pagingNominate(caller: DomId, domid: DomId, gfn: Gfn): void {
    this.permit('paging_nominate', caller, domid);
    paging.pagingNominate(this.h, domid, gfn);
  }

  pagingEvict(caller: DomId, domid: DomId, gfn: Gfn): void {
    this.permit('paging_evict', caller, domid);
    paging.pagingEvict(this.h, domid, gfn);
  }

  pagingPrep(caller: DomId, domid: DomId, gfn: Gfn, data: Uint8Array | undefined): void {
    this.permit('paging_prep', caller, domid);
    paging.pagingPrep(this.h, domid, gfn, data);
  }

  maximumGpfn(caller: DomId, domid: DomId): number {
    this.permit('maximum_gpfn', caller, domid);
    return mem.maximumGpfn(this.h, domid);
  }

  claimPages(caller: DomId, domid: DomId, nrPages: number): void {
    this.controlOnly('claim_pages', caller);
    mem.claimPages(this.h, domid, nrPages);
  }

  sharingFreedPages(caller: DomId): number {
    this.controlOnly('get_sharing_freed_pages', caller);
    return sharing.sharingFreedPages(this.h);
  }

  sharingSharedPages(caller: DomId): number {
    this.controlOnly('get_sharing_shared_pages', caller);
    return sharing.sharingSharedPages(this.h);
  }

  madvise(caller: DomId, domid: DomId, gfn: Gfn, count: number, advice: number): void {
    this.permit('madvise', caller, domid);
    advising.madvise(this.h, domid, gfn, count, advice);
  }

  debugGfn(caller: DomId, domid: DomId, gfn: Gfn): number {
    this.controlOnly('sharing_debug_gfn', caller);
    return sharing.debugGfn(this.h, domid, gfn);
  }

  addPhysmap(caller: DomId, sourceDomid: DomId, sourceGfn: Gfn, sourceHandle: number, clientDomid: DomId, clientGfn: Gfn): void {
    this.permit('sharing_add_physmap', caller, sourceDomid);
    this.permit('sharing_add_physmap', caller, clientDomid);
    sharing.addPhysmap(this.h, sourceDomid, sourceGfn, sourceHandle, clientDomid, clientGfn);
  }

  sharingAudit(caller: DomId): number {
    this.controlOnly('sharing_audit', caller);
    return auditHypervisor(this.h).length;
  }

  rangeShare(caller: DomId, sourceDomid: DomId, clientDomid: DomId, firstGfn: Gfn, lastGfn: Gfn): number {
    this.permit('sharing_range_share', caller, sourceDomid);
    this.permit('sharing_range_share', caller, clientDomid);
    return sharing.rangeShare(this.h, sourceDomid, clientDomid, firstGfn, lastGfn);
  }

  fork(caller: DomId, child: DomId, parent: DomId): void {
    this.permit('sharing_fork', caller, child);
    this.permit('sharing_fork', caller, parent);
    sharing.fork(this.h, child, parent);
  }

  forkReset(caller: DomId, domid: DomId): void {
    this.permit('sharing_fork_reset', caller, domid);
    sharing.forkReset(this.h, domid);
  }

  tmemNewPool(caller: DomId, domid: DomId, persistent: boolean): number {
    this.permit('tmem_new_pool', caller, domid);
    return this.h.tmemFor('tmem_new_pool', domid).newPool(domid, persistent);
  }

  tmemDestroyPool(caller: DomId, domid: DomId, poolId: number): void {
    this.permit('tmem_destroy_pool', caller, domid);
    this.h.tmemFor('tmem_destroy_pool', domid).destroyPool(domid, poolId);
  }

  tmemPutPage(caller: DomId, domid: DomId, poolId: number, oid: TmemOid, index: number, page: Uint8Array): boolean {
    this.permit('tmem_put_page', caller, domid);
    return this.h.tmemFor('tmem_put_page', domid).putPage(domid, poolId, oid, index, page);
  }

  tmemGetPage(caller: DomId, domid: DomId, poolId: number, oid: TmemOid, index: number): Uint8Array | undefined {
    this.permit('tmem_get_page', caller, domid);
    const out = new Uint8Array(PAGE_SIZE);
    return this.h.tmemFor('tmem_get_page', domid).getPage(domid, poolId, oid, index, out) ? out : undefined;
  }

  tmemFlushPage(caller: DomId, domid: DomId, poolId: number, oid: TmemOid, index: number): boolean {
    this.permit('tmem_flush_page', caller, domid);
    return this.h.tmemFor('tmem_flush_page', domid).flushPage(domid, poolId, oid, index);
  }

  tmemFlushObject(caller: DomId, domid: DomId, poolId: number, oid: TmemOid): number {
    this.permit('tmem_flush_object', caller, domid);
    return this.h.tmemFor('tmem_flush_object', domid).flushObject(domid, poolId, oid);
  }

  createDomain(caller: DomId, maxPages: number, gfnCount: number, trustGroup: number): DomId {
    this.controlOnly('domctl_createdomain', caller);
    return this.h.createDomain({ maxPages, gfnCount, trustGroup });
  }

  destroyDomain(caller: DomId, domid: DomId): void {
    this.controlOnly('domctl_destroydomain', caller);
    this.h.destroyDomain(domid);
  }

  pauseDomain(caller: DomId, domid: DomId): void {
    this.controlOnly('domctl_pausedomain', caller);
    this.h.pauseDomain(domid);
  }

  unpauseDomain(caller: DomId, domid: DomId): void {
    this.controlOnly('domctl_unpausedomain', caller);
    this.h.unpauseDomain(domid);
  }

  setMaxPages(caller: DomId, domid: DomId, maxPages: number): void {
    this.controlOnly('domctl_max_mem', caller);
    this.h.setMaxPages(domid, maxPages);
  }

  setSharing(caller: DomId, domid: DomId, enable: boolean): void {
    this.controlOnly('domctl_sharing_control', caller);
    this.h.setSharing(domid, enable);
  }
}

/** True when `caller` may act on `target`: itself, or anything for the control domain. */
export function mayActOn(caller: DomId, target: DomId): boolean {
  return caller === DOMID_CONTROL || caller === target;
}
