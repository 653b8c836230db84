import type { HypercallHandler, TmemOid } from '@pagevisor/hypercall-abi';
import { asGfn, DOMID_CONTROL, HypervisorError, PAGE_SIZE, type DomId, type Gfn } from '@pagevisor/types';
import { mayActOn, type Hypervisor } from './hypervisor.js';

/**
 * The hypervisor as the hypercall dispatcher sees it: the same operations, each first checking
 * privilege, else EPERM. The control domain may act on any domain; a guest acts only on itself,
 * so it can read another domain's memory only through a share the control domain made.
 * Domain control, claims, the audit and the host-wide sharing figures are the control domain's
 * alone (the figures would tell a guest when others' pages merge).
 */
export class AbiHandler implements HypercallHandler {
  constructor(private readonly hv: Hypervisor) {}

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
    return this.hv.increaseReservation(domid, nrExtents, extentOrder, memFlags);
  }

  decreaseReservation(caller: DomId, domid: DomId, gfns: readonly number[], extentOrder: number): number {
    this.permit('decrease_reservation', caller, domid);
    return this.hv.decreaseReservation(domid, gfns, extentOrder);
  }

  populatePhysmap(caller: DomId, domid: DomId, gfns: readonly number[], extentOrder: number, memFlags: number): number {
    this.permit('populate_physmap', caller, domid);
    return this.hv.populatePhysmap(domid, gfns, extentOrder, memFlags);
  }

  currentReservation(caller: DomId, domid: DomId): number {
    this.permit('current_reservation', caller, domid);
    return this.hv.currentReservation(domid);
  }

  maximumReservation(caller: DomId, domid: DomId): number {
    this.permit('maximum_reservation', caller, domid);
    return this.hv.maximumReservation(domid);
  }

  readPage(caller: DomId, domid: DomId, gfn: Gfn, offset: number, length: number): Uint8Array {
    this.permit('read_page', caller, domid);
    const out = new Uint8Array(length);
    this.hv.readPage(domid, gfn, offset, out, 0, length);
    return out;
  }

  writePage(caller: DomId, domid: DomId, gfn: Gfn, offset: number, data: Uint8Array): void {
    this.permit('write_page', caller, domid);
    this.hv.writePage(domid, gfn, offset, data, 0, data.length);
  }

  nominateGfn(caller: DomId, domid: DomId, gfn: Gfn): number {
    this.permit('sharing_nominate_gfn', caller, domid);
    return this.hv.nominateGfn(domid, gfn);
  }

  share(caller: DomId, sourceDomid: DomId, sourceGfn: Gfn, sourceHandle: number, clientDomid: DomId, clientGfn: Gfn, clientHandle: number): void {
    this.permit('sharing_share', caller, sourceDomid);
    this.permit('sharing_share', caller, clientDomid);
    this.hv.share(sourceDomid, asGfn(sourceGfn), sourceHandle, clientDomid, asGfn(clientGfn), clientHandle);
  }

  pagingNominate(caller: DomId, domid: DomId, gfn: Gfn): void {
    this.permit('paging_nominate', caller, domid);
    this.hv.pagingNominate(domid, gfn);
  }

  pagingEvict(caller: DomId, domid: DomId, gfn: Gfn): void {
    this.permit('paging_evict', caller, domid);
    this.hv.pagingEvict(domid, gfn);
  }

  pagingPrep(caller: DomId, domid: DomId, gfn: Gfn, data: Uint8Array | undefined): void {
    this.permit('paging_prep', caller, domid);
    this.hv.pagingPrep(domid, gfn, data);
  }

  maximumGpfn(caller: DomId, domid: DomId): number {
    this.permit('maximum_gpfn', caller, domid);
    return this.hv.maximumGpfn(domid);
  }

  claimPages(caller: DomId, domid: DomId, nrPages: number): void {
    this.controlOnly('claim_pages', caller);
    this.hv.claimPages(domid, nrPages);
  }

  sharingFreedPages(caller: DomId): number {
    this.controlOnly('get_sharing_freed_pages', caller);
    return this.hv.sharingFreedPages();
  }

  sharingSharedPages(caller: DomId): number {
    this.controlOnly('get_sharing_shared_pages', caller);
    return this.hv.sharingSharedPages();
  }

  madvise(caller: DomId, domid: DomId, gfn: Gfn, count: number, advice: number): void {
    this.permit('madvise', caller, domid);
    this.hv.madvise(domid, gfn, count, advice);
  }

  debugGfn(caller: DomId, domid: DomId, gfn: Gfn): number {
    this.controlOnly('sharing_debug_gfn', caller);
    return this.hv.debugGfn(domid, gfn);
  }

  addPhysmap(caller: DomId, sourceDomid: DomId, sourceGfn: Gfn, sourceHandle: number, clientDomid: DomId, clientGfn: Gfn): void {
    this.permit('sharing_add_physmap', caller, sourceDomid);
    this.permit('sharing_add_physmap', caller, clientDomid);
    this.hv.addPhysmap(sourceDomid, sourceGfn, sourceHandle, clientDomid, clientGfn);
  }

  sharingAudit(caller: DomId): number {
    this.controlOnly('sharing_audit', caller);
    return this.hv.audit().length;
  }

  rangeShare(caller: DomId, sourceDomid: DomId, clientDomid: DomId, firstGfn: Gfn, lastGfn: Gfn): number {
    this.permit('sharing_range_share', caller, sourceDomid);
    this.permit('sharing_range_share', caller, clientDomid);
    return this.hv.rangeShare(sourceDomid, clientDomid, firstGfn, lastGfn);
  }

  fork(caller: DomId, child: DomId, parent: DomId): void {
    this.permit('sharing_fork', caller, child);
    this.permit('sharing_fork', caller, parent);
    this.hv.fork(child, parent);
  }

  forkReset(caller: DomId, domid: DomId): void {
    this.permit('sharing_fork_reset', caller, domid);
    this.hv.forkReset(domid);
  }

  tmemNewPool(caller: DomId, domid: DomId, persistent: boolean): number {
    this.permit('tmem_new_pool', caller, domid);
    return this.hv.tmemNewPool(domid, persistent);
  }

  tmemDestroyPool(caller: DomId, domid: DomId, poolId: number): void {
    this.permit('tmem_destroy_pool', caller, domid);
    this.hv.tmemDestroyPool(domid, poolId);
  }

  tmemPutPage(caller: DomId, domid: DomId, poolId: number, oid: TmemOid, index: number, page: Uint8Array): boolean {
    this.permit('tmem_put_page', caller, domid);
    return this.hv.tmemPutPage(domid, poolId, oid, index, page);
  }

  tmemGetPage(caller: DomId, domid: DomId, poolId: number, oid: TmemOid, index: number): Uint8Array | undefined {
    this.permit('tmem_get_page', caller, domid);
    const out = new Uint8Array(PAGE_SIZE);
    return this.hv.tmemGetPage(domid, poolId, oid, index, out) ? out : undefined;
  }

  tmemFlushPage(caller: DomId, domid: DomId, poolId: number, oid: TmemOid, index: number): boolean {
    this.permit('tmem_flush_page', caller, domid);
    return this.hv.tmemFlushPage(domid, poolId, oid, index);
  }

  tmemFlushObject(caller: DomId, domid: DomId, poolId: number, oid: TmemOid): number {
    this.permit('tmem_flush_object', caller, domid);
    return this.hv.tmemFlushObject(domid, poolId, oid);
  }

  createDomain(caller: DomId, maxPages: number, gfnCount: number, trustGroup: number): DomId {
    this.controlOnly('domctl_createdomain', caller);
    return this.hv.createDomain({ maxPages, gfnCount, trustGroup });
  }

  destroyDomain(caller: DomId, domid: DomId): void {
    this.controlOnly('domctl_destroydomain', caller);
    this.hv.destroyDomain(domid);
  }

  pauseDomain(caller: DomId, domid: DomId): void {
    this.controlOnly('domctl_pausedomain', caller);
    this.hv.pauseDomain(domid);
  }

  unpauseDomain(caller: DomId, domid: DomId): void {
    this.controlOnly('domctl_unpausedomain', caller);
    this.hv.unpauseDomain(domid);
  }

  setMaxPages(caller: DomId, domid: DomId, maxPages: number): void {
    this.controlOnly('domctl_max_mem', caller);
    this.hv.setMaxPages(domid, maxPages);
  }

  setSharing(caller: DomId, domid: DomId, enable: boolean): void {
    this.controlOnly('domctl_sharing_control', caller);
    this.hv.setSharing(domid, enable);
  }
}
