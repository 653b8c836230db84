declare const brand: unique symbol;

/** A number that the type checker keeps apart from other numbers of another brand. */
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Machine frame number: index of a 4 KiB frame of host RAM. */
export type Mfn = Brand<number, 'Mfn'>;
/** Guest frame number: index of a 4 KiB page in a domain's pseudo-physical address space. */
export type Gfn = Brand<number, 'Gfn'>;
/** Domain id. Real domains use 0 .. DOMID_FIRST_RESERVED - 1; 0 is the control domain. */
export type DomId = Brand<number, 'DomId'>;
/** Slot index in a swap area. */
export type SwapSlot = Brand<number, 'SwapSlot'>;

/** Casts a number to an {@link Mfn}. */
export const asMfn = (n: number): Mfn => n as Mfn;
/** Casts a number to a {@link Gfn}. */
export const asGfn = (n: number): Gfn => n as Gfn;
/** Casts a number to a {@link DomId}. */
export const asDomId = (n: number): DomId => n as DomId;
/** Casts a number to a {@link SwapSlot}. */
export const asSwapSlot = (n: number): SwapSlot => n as SwapSlot;

/** No machine frame (Xen's INVALID_MFN). */
export const INVALID_MFN = -1 as Mfn;
/** No guest frame. */
export const INVALID_GFN = -1 as Gfn;
/** No swap slot. */
export const INVALID_SWAP_SLOT = -1 as SwapSlot;

/** The control domain (Xen's dom0): the only domain allowed to act on others. */
export const DOMID_CONTROL = 0 as DomId;
/** First id reserved for special domains (Xen's DOMID_FIRST_RESERVED). */
export const DOMID_FIRST_RESERVED = 0x7ff0;
/** "The calling domain" in hypercall arguments (Xen's DOMID_SELF). */
export const DOMID_SELF = 0x7ff0 as DomId;
/** Owner of hypervisor-internal frames such as the zero frame (Xen's DOMID_XEN). */
export const DOMID_XEN = 0x7ff2 as DomId;
/** Owner of shared copy-on-write frames (Xen's DOMID_COW / dom_cow). */
export const DOMID_COW = 0x7ff3 as DomId;
/** No domain (Xen's DOMID_INVALID); also the owner of free frames. */
export const DOMID_INVALID = 0x7ff4 as DomId;

/** True when `id` names a real (non-reserved) domain. */
export function isRealDomId(id: number): id is DomId {
  return Number.isInteger(id) && id >= 0 && id < DOMID_FIRST_RESERVED;
}
