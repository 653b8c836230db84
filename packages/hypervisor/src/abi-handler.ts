import type { HypercallHandler } from '@pagevisor/hypercall-abi';
import { asGfn, HypervisorError, type DomId, type Gfn } from '@pagevisor/types';
import { mayActOn, type Hypervisor } from './hypervisor.js';

/**
 * The hypervisor as the hypercall dispatcher sees it: the same operations, each first checking
 * that the caller may act on the target domain (the control domain may act on any; a guest only
 * on itself), else EPERM.
 */
export class AbiHandler implements HypercallHandler {
  constructor(private readonly hv: Hypervisor) {}

  private permit(op: string, caller: DomId, target: DomId): void {
    if (!mayActOn(caller, target)) {
      throw new HypervisorError('EPERM', op, `dom ${caller} may not act on dom ${target}`);
    }
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
}
