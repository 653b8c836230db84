import type { ErrnoName } from '@pagevisor/types';
import { DomCtl, Hypercall, PagingOp, SharingOp, TmemCmd, XEN_DOMCTL_MEM_SHARING_CONTROL, XenMem } from './op-numbers.js';
import type { HypercallOp } from './request.js';

/**
 * Wire type of a field, little-endian. `u64` and `i64` are read as two 32-bit halves without
 * BigInt: values outside the safe-integer range (|v| > 2^53 - 1) are refused with EINVAL.
 */
export type FieldType = 'u16' | 'u32' | 'u64' | 'i64';

/** Bytes each {@link FieldType} occupies. */
export const FIELD_SIZE: { readonly [T in FieldType]: number } = { u16: 2, u32: 4, u64: 8, i64: 8 };

/**
 * What a field carries:
 * - `value`: the request/response property named by `prop`;
 * - `count`: the number of elements of the struct's tail;
 * - `zero`: reserved, written as 0 and refused with EINVAL when not 0;
 * - `selector`: a constant (`value`) that selects the operation, like Xen's sharing and paging `op` byte.
 */
export type FieldRole = 'value' | 'count' | 'zero' | 'selector';

/** One field of a struct. */
export interface FieldSpec {
  /** Wire name; Xen's name where the field has a Xen counterpart. */
  readonly name: string;
  /** Byte offset from the start of the struct. */
  readonly offset: number;
  readonly type: FieldType;
  readonly role: FieldRole;
  /** For `value` fields: the request or response property carried. */
  readonly prop?: string;
  /** For `selector` fields: the constant. */
  readonly value?: number;
  /** Meaning, for the generated ABI documentation. */
  readonly doc: string;
}

/** A variable-length array after the fixed fields; its length is the struct's `count` field. */
export interface TailSpec {
  /** Wire name; Xen's name where there is one. */
  readonly name: string;
  /** Request or response property carried. */
  readonly prop: 'gfns' | 'data';
  /** Element type: `u64` numbers (gfns) or raw bytes. */
  readonly element: 'u64' | 'u8';
  /**
   * When true the property is optional: absent encodes as an empty tail, and an empty tail
   * decodes as the property absent (not as an empty array).
   */
  readonly optional?: boolean;
  readonly doc: string;
}

/** A struct: fixed fields in `size` bytes, then an optional tail. */
export interface StructLayout {
  /** Bytes of the fixed part. */
  readonly size: number;
  readonly fields: readonly FieldSpec[];
  readonly tail?: TailSpec;
}

/** Wire description of one operation. */
export interface OpLayout {
  readonly op: HypercallOp;
  /** Value of the header's `hypercall` field. */
  readonly hypercall: number;
  /** Value of the header's `subop` field. */
  readonly subop: number;
  /** Request property carried by the header's `domid` field. */
  readonly domidProp: 'domid' | 'sourceDomid';
  /** The Xen operation this mirrors, or why there is none. */
  readonly xen: string;
  /** Meaning of rc >= 0 in the response. */
  readonly rc: string;
  /**
   * Every errno the op's handler can return (rc = -errno), with when; a test provokes each one.
   * Decoding errors (EFAULT, ENOSYS, EINVAL for a field out of range) apply to every op and are
   * listed in {@link DECODE_ERRORS}.
   */
  readonly errors: Readonly<Partial<Record<ErrnoName, string>>>;
  /** Request payload (after the request header). */
  readonly request: StructLayout;
  /** Response body (after the response header), present only when rc >= 0. */
  readonly response: StructLayout;
}

function value(name: string, offset: number, type: FieldType, prop: string, doc: string): FieldSpec {
  return { name, offset, type, role: 'value', prop, doc };
}

function count(name: string, offset: number, type: FieldType, doc: string): FieldSpec {
  return { name, offset, type, role: 'count', doc };
}

function zero(name: string, offset: number, type: FieldType, doc = 'reserved, 0'): FieldSpec {
  return { name, offset, type, role: 'zero', doc };
}

function selector(name: string, offset: number, type: FieldType, v: number, doc: string): FieldSpec {
  return { name, offset, type, role: 'selector', value: v, doc };
}

/**
 * Every request starts with this 16-byte header; `payload_length` bytes of the op's request
 * struct follow, and nothing else (trailing bytes are refused with EFAULT).
 */
export const REQUEST_HEADER: StructLayout = {
  size: 16,
  fields: [
    value('hypercall', 0, 'u32', 'hypercall', 'hypercall number (Hypercall.*)'),
    value('subop', 4, 'u32', 'subop', 'XENMEM_* for memory_op; 0 for pagevisor hypercalls'),
    value('domid', 8, 'u16', 'domid', 'target domain; DOMID_SELF (0x7ff0) is the caller'),
    zero('pad', 10, 'u16'),
    value('payload_length', 12, 'u32', 'payloadLength', 'bytes of the op struct after this header'),
  ],
};

/**
 * Every response starts with this 16-byte header; then, when rc >= 0, the op's response body;
 * then `message_length` bytes of UTF-8 error text (a pagevisor addition: Xen returns only rc).
 */
export const RESPONSE_HEADER: StructLayout = {
  size: 16,
  fields: [
    value('rc', 0, 'i64', 'rc', 'result >= 0, or -errno'),
    value('message_length', 8, 'u32', 'messageLength', 'bytes of UTF-8 message at the end'),
    zero('pad', 12, 'u32'),
  ],
};

const NO_BODY: StructLayout = { size: 0, fields: [] };

/** Errnos any request can get before its handler runs: the decoder's. */
export const DECODE_ERRORS: Readonly<Partial<Record<ErrnoName, string>>> = {
  EFAULT: 'the buffer is shorter than the header, or its lengths disagree (truncated, trailing bytes)',
  ENOSYS: 'unknown hypercall, subop, or sharing/paging/domctl selector',
  EINVAL: 'a field is out of range (schema), a 64-bit value exceeds 2^53 - 1, or a reserved field is not 0',
};

// Errnos shared by many ops, worded once.
const ESRCH = { ESRCH: 'the target domain does not exist' } as const;
const EPERM_GUEST = { EPERM: 'a guest names another domain (a guest acts only on itself; the control domain on any)' } as const;
const EPERM_CONTROL = { EPERM: 'the caller is not the control domain' } as const;
const GUEST_OP = { ...ESRCH, ...EPERM_GUEST } as const;
const CONTROL_OP = { ...ESRCH, ...EPERM_CONTROL } as const;
const SHARING_OFF = { EOPNOTSUPP: 'sharing is disabled (domctl_sharing_control) for a domain involved or for a domain mapping a frame involved' } as const;
const TMEM_OFF = { EOPNOTSUPP: 'this hypervisor has no tmem store' } as const;
const NO_POOL = { ENOENT: 'the domain has no pool of that id' } as const;

/** A request with the header alone (the target is the header's domid). */
const HEADER_ONLY: StructLayout = NO_BODY;

/** Fields of a tmem page key after the pool id: the object id, three 64-bit words. */
function tmemKeyFields(): FieldSpec[] {
  return [
    value('pool_id', 0, 'u32', 'poolId', 'pool of the calling domain (from tmem_new_pool)'),
    zero('pad', 4, 'u32'),
    value('oid0', 8, 'u64', 'oid0', 'object id, word 0'),
    value('oid1', 16, 'u64', 'oid1', 'object id, word 1'),
    value('oid2', 24, 'u64', 'oid2', 'object id, word 2'),
  ];
}

/** The fixed part of a get/flush page request: key, index, padding. */
const TMEM_PAGE_KEY: StructLayout = {
  size: 40,
  fields: [...tmemKeyFields(), value('index', 32, 'u32', 'index', 'page index in the object'), zero('pad2', 36, 'u32')],
};

const EXTENT_ARRAY: TailSpec = {
  name: 'extent_start',
  prop: 'gfns',
  element: 'u64',
  doc: 'base gfn of each extent (xen_pfn_t, 64-bit)',
};

/**
 * Request of a `XENMEM_paging_op` sub-operation. Xen's struct xen_mem_paging_op is { u8 op;
 * domid_t domain; u64 buffer; u64 gfn }: here the domain is the header's domid, `op` is widened to
 * u32 like the sharing op's, and prep's guest buffer pointer becomes `buffer_length` bytes inline
 * after the struct (0, or PAGE_SIZE to load the page).
 */
function pagingRequest(op: number, name: string, gfnDoc: string, withBuffer: boolean): StructLayout {
  return {
    size: 16,
    fields: [
      selector('op', 0, 'u32', op, name),
      withBuffer
        ? count('buffer_length', 4, 'u32', 'bytes of buffer: 0, or PAGE_SIZE to load the page')
        : zero('pad', 4, 'u32'),
      value('gfn', 8, 'u64', 'gfn', gfnDoc),
    ],
    ...(withBuffer
      ? {
          tail: {
            name: 'buffer',
            prop: 'data',
            element: 'u8',
            optional: true,
            doc: 'the page content to load (Xen: the guest buffer of XENMEM_paging_op_prep)',
          } satisfies TailSpec,
        }
      : {}),
  };
}

/**
 * The ABI, one row per operation: numbers, request payload and response body. The codecs are
 * driven by this table, so documentation generated from it describes the bytes exactly.
 */
export const OP_LAYOUTS: { readonly [K in HypercallOp]: OpLayout & { readonly op: K } } = {
  increase_reservation: {
    op: 'increase_reservation',
    hypercall: Hypercall.memory_op,
    subop: XenMem.increase_reservation,
    domidProp: 'domid',
    xen: 'XENMEM_increase_reservation with struct xen_memory_reservation',
    rc: 'extents populated (may be fewer than nr_extents)',
    errors: {
      ...GUEST_OP,
      E2BIG: 'the domain would hold more than max_pages',
      ENOMEM: 'no room in the guest-physical space, or not enough free frames (after eviction and other domains\' claims)',
    },
    request: {
      size: 16,
      fields: [
        value('nr_extents', 0, 'u32', 'nrExtents', 'extents wanted, <= MAX_EXTENTS'),
        value('extent_order', 4, 'u32', 'extentOrder', 'log2 of pages per extent, <= MAX_ORDER'),
        value('mem_flags', 8, 'u32', 'memFlags', 'XENMEMF_* bits'),
        zero('pad', 12, 'u32'),
      ],
    },
    response: {
      size: 8,
      fields: [
        count('nr_done', 0, 'u32', 'extents populated, equal to rc'),
        zero('pad', 4, 'u32'),
      ],
      tail: { ...EXTENT_ARRAY, doc: 'base gfn of each extent populated (Xen writes these into extent_start)' },
    },
  },
  decrease_reservation: {
    op: 'decrease_reservation',
    hypercall: Hypercall.memory_op,
    subop: XenMem.decrease_reservation,
    domidProp: 'domid',
    xen: 'XENMEM_decrease_reservation with struct xen_memory_reservation',
    rc: 'extents released',
    errors: { ...GUEST_OP, EINVAL: 'an extent is outside the domain, unaligned, named twice, or not populated' },
    request: {
      size: 16,
      fields: [
        count('nr_extents', 0, 'u32', 'entries of extent_start, <= MAX_EXTENTS'),
        value('extent_order', 4, 'u32', 'extentOrder', 'log2 of pages per extent, <= MAX_ORDER'),
        zero('mem_flags', 8, 'u32', 'unused by this op, 0'),
        zero('pad', 12, 'u32'),
      ],
      tail: EXTENT_ARRAY,
    },
    response: NO_BODY,
  },
  populate_physmap: {
    op: 'populate_physmap',
    hypercall: Hypercall.memory_op,
    subop: XenMem.populate_physmap,
    domidProp: 'domid',
    xen: 'XENMEM_populate_physmap with struct xen_memory_reservation',
    rc: 'extents populated (may be fewer than nr_extents)',
    errors: {
      ...GUEST_OP,
      EINVAL: 'an extent is outside the domain, unaligned or named twice',
      EEXIST: 'a page of an extent is already populated',
      E2BIG: 'the domain would hold more than max_pages',
      ENOMEM: 'not enough free frames (after eviction and other domains\' claims)',
    },
    request: {
      size: 16,
      fields: [
        count('nr_extents', 0, 'u32', 'entries of extent_start, <= MAX_EXTENTS'),
        value('extent_order', 4, 'u32', 'extentOrder', 'log2 of pages per extent, <= MAX_ORDER'),
        value('mem_flags', 8, 'u32', 'memFlags', 'XENMEMF_* bits (XENMEMF_populate_on_demand)'),
        zero('pad', 12, 'u32'),
      ],
      tail: EXTENT_ARRAY,
    },
    response: NO_BODY,
  },
  current_reservation: {
    op: 'current_reservation',
    hypercall: Hypercall.memory_op,
    subop: XenMem.current_reservation,
    domidProp: 'domid',
    xen: 'XENMEM_current_reservation (Xen passes a domid_t; here it is the header domid)',
    rc: 'pages the domain holds (tot_pages)',
    errors: GUEST_OP,
    request: NO_BODY,
    response: NO_BODY,
  },
  maximum_reservation: {
    op: 'maximum_reservation',
    hypercall: Hypercall.memory_op,
    subop: XenMem.maximum_reservation,
    domidProp: 'domid',
    xen: 'XENMEM_maximum_reservation (Xen passes a domid_t; here it is the header domid)',
    rc: 'pages the domain may hold (max_pages)',
    errors: GUEST_OP,
    request: NO_BODY,
    response: NO_BODY,
  },
  maximum_gpfn: {
    op: 'maximum_gpfn',
    hypercall: Hypercall.memory_op,
    subop: XenMem.maximum_gpfn,
    domidProp: 'domid',
    xen: 'XENMEM_maximum_gpfn (Xen passes a domid_t; here it is the header domid)',
    rc: 'highest gfn the domain has populated, 0 when none',
    errors: GUEST_OP,
    request: HEADER_ONLY,
    response: NO_BODY,
  },
  claim_pages: {
    op: 'claim_pages',
    hypercall: Hypercall.memory_op,
    subop: XenMem.claim_pages,
    domidProp: 'domid',
    xen: 'XENMEM_claim_pages with struct xen_memory_reservation (nr_extents pages of order 0); claims hold against reservation growth only',
    rc: '0',
    errors: {
      ...CONTROL_OP,
      EINVAL: 'nr_pages is not above the pages the domain holds, is above its max_pages, or a claim is already held (0 cancels)',
      ENOMEM: 'fewer free frames than the claim, after other domains\' claims',
    },
    request: {
      size: 16,
      fields: [
        value('nr_extents', 0, 'u32', 'nrPages', 'pages the domain is to hold in total (0: cancel the claim)'),
        zero('extent_order', 4, 'u32', 'must be 0'),
        zero('mem_flags', 8, 'u32', 'must be 0'),
        zero('pad', 12, 'u32'),
      ],
    },
    response: NO_BODY,
  },
  get_sharing_freed_pages: {
    op: 'get_sharing_freed_pages',
    hypercall: Hypercall.memory_op,
    subop: XenMem.get_sharing_freed_pages,
    domidProp: 'domid',
    xen: 'XENMEM_get_sharing_freed_pages; control domain only here (host-wide sharing figures are a side channel)',
    rc: 'frames sharing saves: mappings of shared frames (the zero frame included) minus the shared frames',
    errors: EPERM_CONTROL,
    request: HEADER_ONLY,
    response: NO_BODY,
  },
  get_sharing_shared_pages: {
    op: 'get_sharing_shared_pages',
    hypercall: Hypercall.memory_op,
    subop: XenMem.get_sharing_shared_pages,
    domidProp: 'domid',
    xen: 'XENMEM_get_sharing_shared_pages; control domain only here (host-wide sharing figures are a side channel)',
    rc: 'shared frames mapped at least once (the zero frame included)',
    errors: EPERM_CONTROL,
    request: HEADER_ONLY,
    response: NO_BODY,
  },
  read_page: {
    op: 'read_page',
    hypercall: Hypercall.read_page,
    subop: 0,
    domidProp: 'domid',
    xen: 'none: a Xen guest reads its pages with loads; pagevisor hypercall 0x1000',
    rc: '0',
    errors: {
      ...GUEST_OP,
      EINVAL: 'the gfn is outside the domain or not populated',
      EAGAIN: 'the domain is paused',
      EIO: 'bringing the page back from swap failed (the domain is paused)',
      ENOMEM: 'the page is out on swap and no frame can be freed for it',
    },
    request: {
      size: 16,
      fields: [
        value('gfn', 0, 'u64', 'gfn', 'page to read'),
        value('offset', 8, 'u32', 'offset', 'byte offset in the page'),
        value('length', 12, 'u32', 'length', 'bytes to read; offset + length <= PAGE_SIZE'),
      ],
    },
    response: {
      size: 8,
      fields: [
        count('length', 0, 'u32', 'bytes that follow'),
        zero('pad', 4, 'u32'),
      ],
      tail: { name: 'data', prop: 'data', element: 'u8', doc: 'the bytes read' },
    },
  },
  write_page: {
    op: 'write_page',
    hypercall: Hypercall.write_page,
    subop: 0,
    domidProp: 'domid',
    xen: 'none: a Xen guest writes its pages with stores; pagevisor hypercall 0x1001',
    rc: '0',
    errors: {
      ...GUEST_OP,
      EINVAL: 'the gfn is outside the domain or not populated',
      EAGAIN: 'the domain is paused',
      EIO: 'bringing the page back from swap failed (the domain is paused)',
      ENOMEM: 'no frame for the copy-on-write copy, the on-demand page or the swap-in',
    },
    request: {
      size: 16,
      fields: [
        value('gfn', 0, 'u64', 'gfn', 'page to write'),
        value('offset', 8, 'u32', 'offset', 'byte offset in the page'),
        count('length', 12, 'u32', 'bytes of data; offset + length <= PAGE_SIZE'),
      ],
      tail: { name: 'data', prop: 'data', element: 'u8', doc: 'the bytes to write' },
    },
    response: NO_BODY,
  },
  madvise: {
    op: 'madvise',
    hypercall: Hypercall.madvise,
    subop: 0,
    domidProp: 'domid',
    xen: 'none: Linux madvise(2) advice on guest pages; pagevisor hypercall 0x1002 (Xen has no madvise)',
    rc: '0',
    errors: {
      ...GUEST_OP,
      EINVAL: 'the range is outside the domain',
      ENOMEM: 'MADV_UNMERGEABLE: not enough free frames to unmerge (nothing changed)',
    },
    request: {
      size: 24,
      fields: [
        value('gfn', 0, 'u64', 'gfn', 'first page'),
        value('count', 8, 'u64', 'count', 'pages'),
        value('advice', 16, 'u32', 'advice', 'MADV_DONTNEED (4), MADV_MERGEABLE (12) or MADV_UNMERGEABLE (13)'),
        zero('pad', 20, 'u32'),
      ],
    },
    response: NO_BODY,
  },
  sharing_nominate_gfn: {
    op: 'sharing_nominate_gfn',
    hypercall: Hypercall.memory_op,
    subop: XenMem.sharing_op,
    domidProp: 'domid',
    xen: 'XENMEM_sharing_op / XENMEM_sharing_op_nominate_gfn (struct xen_mem_sharing_op)',
    rc: '0; the handle is in the body',
    errors: { ...GUEST_OP, ...SHARING_OFF, EINVAL: 'the gfn is outside the domain, has no frame, or maps the zero frame' },
    request: {
      size: 16,
      fields: [
        selector('op', 0, 'u32', SharingOp.nominate_gfn, 'XENMEM_sharing_op_nominate_gfn'),
        zero('pad', 4, 'u32'),
        value('gfn', 8, 'u64', 'gfn', 'page to nominate'),
      ],
    },
    response: {
      size: 8,
      fields: [value('handle', 0, 'u64', 'handle', 'sharing handle of the page (Xen: u.nominate.handle)')],
    },
  },
  sharing_share: {
    op: 'sharing_share',
    hypercall: Hypercall.memory_op,
    subop: XenMem.sharing_op,
    domidProp: 'sourceDomid',
    xen: 'XENMEM_sharing_op / XENMEM_sharing_op_share (struct xen_mem_sharing_op); header domid is the source domain',
    rc: '0',
    errors: {
      ...GUEST_OP,
      ...SHARING_OFF,
      EPERM: 'a guest names another domain, or the two domains are in different trust groups',
      ENOENT: 'a handle is not current for its page (Xen: XENMEM_SHARING_OP_S/C_HANDLE_INVALID)',
      EINVAL: 'a gfn is outside its domain, or the two pages differ in content',
    },
    request: {
      size: 40,
      fields: [
        selector('op', 0, 'u32', SharingOp.share, 'XENMEM_sharing_op_share'),
        value('client_domain', 4, 'u16', 'clientDomid', 'domain of the client page'),
        zero('pad', 6, 'u16'),
        value('source_gfn', 8, 'u64', 'sourceGfn', 'page whose frame is kept'),
        value('source_handle', 16, 'u64', 'sourceHandle', 'handle from nominating the source'),
        value('client_gfn', 24, 'u64', 'clientGfn', 'page remapped to the source frame'),
        value('client_handle', 32, 'u64', 'clientHandle', 'handle from nominating the client'),
      ],
    },
    response: NO_BODY,
  },
  sharing_debug_gfn: {
    op: 'sharing_debug_gfn',
    hypercall: Hypercall.memory_op,
    subop: XenMem.sharing_op,
    domidProp: 'domid',
    xen: 'XENMEM_sharing_op / XENMEM_sharing_op_debug_gfn (struct xen_mem_sharing_op); control domain only here (a guest would learn whether others hold its content)',
    rc: 'mappings of the frame behind the page (1 for a private page)',
    errors: { ...CONTROL_OP, EINVAL: 'the gfn is outside the domain or has no frame' },
    request: {
      size: 16,
      fields: [
        selector('op', 0, 'u32', SharingOp.debug_gfn, 'XENMEM_sharing_op_debug_gfn'),
        zero('pad', 4, 'u32'),
        value('gfn', 8, 'u64', 'gfn', 'page to look at'),
      ],
    },
    response: NO_BODY,
  },
  sharing_add_physmap: {
    op: 'sharing_add_physmap',
    hypercall: Hypercall.memory_op,
    subop: XenMem.sharing_op,
    domidProp: 'sourceDomid',
    xen: 'XENMEM_sharing_op / XENMEM_sharing_op_add_physmap (struct xen_mem_sharing_op); header domid is the source domain',
    rc: '0',
    errors: {
      ...GUEST_OP,
      ...SHARING_OFF,
      EPERM: 'a guest names another domain, or the two domains are in different trust groups',
      ENOENT: 'the source handle is not current for its page',
      EINVAL: 'a gfn is outside its domain',
      EEXIST: 'the client gfn is already populated',
      E2BIG: 'the client would hold more than max_pages',
    },
    request: {
      size: 32,
      fields: [
        selector('op', 0, 'u32', SharingOp.add_physmap, 'XENMEM_sharing_op_add_physmap'),
        value('client_domain', 4, 'u16', 'clientDomid', 'domain of the client gfn'),
        zero('pad', 6, 'u16'),
        value('source_gfn', 8, 'u64', 'sourceGfn', 'nominated page whose frame is mapped'),
        value('source_handle', 16, 'u64', 'sourceHandle', 'handle from nominating the source'),
        value('client_gfn', 24, 'u64', 'clientGfn', 'unpopulated gfn of the client to map it at'),
      ],
    },
    response: NO_BODY,
  },
  sharing_audit: {
    op: 'sharing_audit',
    hypercall: Hypercall.memory_op,
    subop: XenMem.sharing_op,
    domidProp: 'domid',
    xen: 'XENMEM_sharing_op / XENMEM_sharing_op_audit; checks every invariant of the host, not only sharing',
    rc: 'broken invariants found (0: sound)',
    errors: EPERM_CONTROL,
    request: {
      size: 8,
      fields: [selector('op', 0, 'u32', SharingOp.audit, 'XENMEM_sharing_op_audit'), zero('pad', 4, 'u32')],
    },
    response: NO_BODY,
  },
  sharing_range_share: {
    op: 'sharing_range_share',
    hypercall: Hypercall.memory_op,
    subop: XenMem.sharing_op,
    domidProp: 'sourceDomid',
    xen: 'XENMEM_sharing_op / XENMEM_sharing_op_range_share; rc is the pages shared (Xen returns 0)',
    rc: 'pages newly shared',
    errors: {
      ...GUEST_OP,
      ...SHARING_OFF,
      EPERM: 'a guest names another domain, or the two domains are in different trust groups',
      EINVAL: 'the range is outside a domain, or source and client are the same domain',
    },
    request: {
      size: 24,
      fields: [
        selector('op', 0, 'u32', SharingOp.range_share, 'XENMEM_sharing_op_range_share'),
        value('client_domain', 4, 'u16', 'clientDomid', 'domain whose pages join the source\'s'),
        zero('pad', 6, 'u16'),
        value('first_gfn', 8, 'u64', 'firstGfn', 'first gfn of the range, in both domains'),
        value('last_gfn', 16, 'u64', 'lastGfn', 'last gfn of the range (inclusive), >= first_gfn'),
      ],
    },
    response: NO_BODY,
  },
  sharing_fork: {
    op: 'sharing_fork',
    hypercall: Hypercall.memory_op,
    subop: XenMem.sharing_op,
    domidProp: 'domid',
    xen: 'XENMEM_sharing_op / XENMEM_sharing_op_fork; the header domid is the (empty) child, as Xen\'s; pages are shared at once, not on first access',
    rc: '0',
    errors: {
      ...GUEST_OP,
      ...SHARING_OFF,
      EPERM: 'a guest names another domain, or parent and child are in different trust groups',
      EINVAL: 'the child is the parent, or its guest-physical space is smaller than the parent\'s populated range',
      EBUSY: 'the child already holds pages or is a fork',
      E2BIG: 'the child\'s max_pages is below the pages the parent holds',
      ENOSPC: 'a paged-out page could not be copied into the child\'s swap area',
      EIO: 'reading or writing a paged-out page for the child failed',
    },
    request: {
      size: 16,
      fields: [
        selector('op', 0, 'u32', SharingOp.fork, 'XENMEM_sharing_op_fork'),
        value('parent_domain', 4, 'u16', 'parentDomid', 'domain to fork'),
        zero('pad', 6, 'u16'),
        zero('flags', 8, 'u32', 'fork flags, must be 0'),
        zero('pad2', 12, 'u32'),
      ],
    },
    response: NO_BODY,
  },
  sharing_fork_reset: {
    op: 'sharing_fork_reset',
    hypercall: Hypercall.memory_op,
    subop: XenMem.sharing_op,
    domidProp: 'domid',
    xen: 'XENMEM_sharing_op / XENMEM_sharing_op_fork_reset (memory only); EINVAL for a domain that is not a fork (Xen: ENOSYS)',
    rc: '0',
    errors: {
      ...GUEST_OP,
      ...SHARING_OFF,
      EPERM: 'a guest names another domain, or the fork and its parent are in different trust groups',
      EINVAL: 'the domain is not a fork, or its guest-physical space no longer holds the parent\'s populated range',
      E2BIG: 'the fork\'s max_pages is below the pages its parent holds now',
      ENOSPC: 'a paged-out page could not be copied into the fork\'s swap area',
      EIO: 'reading or writing a paged-out page for the fork failed',
    },
    request: {
      size: 16,
      fields: [
        selector('op', 0, 'u32', SharingOp.fork_reset, 'XENMEM_sharing_op_fork_reset'),
        zero('pad', 4, 'u32'),
        zero('flags', 8, 'u32', 'fork flags, must be 0'),
        zero('pad2', 12, 'u32'),
      ],
    },
    response: NO_BODY,
  },
  paging_nominate: {
    op: 'paging_nominate',
    hypercall: Hypercall.memory_op,
    subop: XenMem.paging_op,
    domidProp: 'domid',
    xen: 'XENMEM_paging_op / XENMEM_paging_op_nominate (struct xen_mem_paging_op)',
    rc: '0',
    errors: { ...GUEST_OP, EOPNOTSUPP: 'the hypervisor has no swap area', EINVAL: 'the gfn is outside the domain or not a private ram_rw page' },
    request: pagingRequest(PagingOp.nominate, 'XENMEM_paging_op_nominate', 'page to nominate for paging out', false),
    response: NO_BODY,
  },
  paging_evict: {
    op: 'paging_evict',
    hypercall: Hypercall.memory_op,
    subop: XenMem.paging_op,
    domidProp: 'domid',
    xen: 'XENMEM_paging_op / XENMEM_paging_op_evict (struct xen_mem_paging_op)',
    rc: '0',
    errors: {
      ...GUEST_OP,
      EOPNOTSUPP: 'the hypervisor has no swap area',
      EINVAL: 'the gfn is outside the domain or not nominated (paging_out)',
      ENOSPC: 'the swap area is full',
      EIO: 'the swap device failed the write',
    },
    request: pagingRequest(PagingOp.evict, 'XENMEM_paging_op_evict', 'nominated page to evict', false),
    response: NO_BODY,
  },
  paging_prep: {
    op: 'paging_prep',
    hypercall: Hypercall.memory_op,
    subop: XenMem.paging_op,
    domidProp: 'domid',
    xen: 'XENMEM_paging_op / XENMEM_paging_op_prep (struct xen_mem_paging_op); the buffer travels inline',
    rc: '0',
    errors: {
      ...GUEST_OP,
      EOPNOTSUPP: 'the hypervisor has no swap area',
      EINVAL: 'the gfn is outside the domain or not paged out',
      ENOMEM: 'no frame can be freed for the page',
      EIO: 'reading the page from swap failed',
    },
    request: pagingRequest(PagingOp.prep, 'XENMEM_paging_op_prep', 'paged-out page to back again', true),
    response: NO_BODY,
  },
  tmem_new_pool: {
    op: 'tmem_new_pool',
    hypercall: Hypercall.tmem_op,
    subop: TmemCmd.new_pool,
    domidProp: 'domid',
    xen: 'TMEM_NEW_POOL (struct tmem_op.u.creat); the uuid must be 0 (no shared pools) and the page-size and version bits 0',
    rc: 'the new pool\'s id (per domain, 0..15)',
    errors: { ...GUEST_OP, ...TMEM_OFF, ENOSPC: 'the domain has 16 pools already' },
    request: {
      size: 24,
      fields: [
        zero('uuid_lo', 0, 'u64', 'shared-pool uuid, must be 0'),
        zero('uuid_hi', 8, 'u64', 'shared-pool uuid, must be 0'),
        value('flags', 16, 'u32', 'flags', 'TMEM_POOL_PERSIST (1) for a persistent pool, 0 for an ephemeral one'),
        zero('arg1', 20, 'u32'),
      ],
    },
    response: NO_BODY,
  },
  tmem_destroy_pool: {
    op: 'tmem_destroy_pool',
    hypercall: Hypercall.tmem_op,
    subop: TmemCmd.destroy_pool,
    domidProp: 'domid',
    xen: 'TMEM_DESTROY_POOL',
    rc: '0',
    errors: { ...GUEST_OP, ...TMEM_OFF, ...NO_POOL },
    request: { size: 8, fields: [value('pool_id', 0, 'u32', 'poolId', 'pool to destroy'), zero('pad', 4, 'u32')] },
    response: NO_BODY,
  },
  tmem_put_page: {
    op: 'tmem_put_page',
    hypercall: Hypercall.tmem_op,
    subop: TmemCmd.put_page,
    domidProp: 'domid',
    xen: 'TMEM_PUT_PAGE (struct tmem_op.u.gen); the page travels inline instead of by guest frame',
    rc: '1 stored, 0 not stored (an ephemeral pool with no room)',
    errors: { ...GUEST_OP, ...TMEM_OFF, ...NO_POOL, ENOSPC: 'a persistent pool and the store is full' },
    request: {
      size: 40,
      fields: [...tmemKeyFields(), value('index', 32, 'u32', 'index', 'page index in the object'), count('len', 36, 'u32', 'bytes of page: PAGE_SIZE')],
      tail: { name: 'page', prop: 'data', element: 'u8', doc: 'the page, PAGE_SIZE bytes' },
    },
    response: NO_BODY,
  },
  tmem_get_page: {
    op: 'tmem_get_page',
    hypercall: Hypercall.tmem_op,
    subop: TmemCmd.get_page,
    domidProp: 'domid',
    xen: 'TMEM_GET_PAGE; the page comes back in the response instead of into a guest frame',
    rc: '1 found (the page follows; an ephemeral pool drops it), 0 not found',
    errors: { ...GUEST_OP, ...TMEM_OFF, ...NO_POOL },
    request: TMEM_PAGE_KEY,
    response: {
      size: 8,
      fields: [count('length', 0, 'u32', 'bytes that follow: PAGE_SIZE when rc = 1, else 0'), zero('pad', 4, 'u32')],
      tail: { name: 'page', prop: 'data', element: 'u8', optional: true, doc: 'the page' },
    },
  },
  tmem_flush_page: {
    op: 'tmem_flush_page',
    hypercall: Hypercall.tmem_op,
    subop: TmemCmd.flush_page,
    domidProp: 'domid',
    xen: 'TMEM_FLUSH_PAGE; rc says whether a page was there (Xen returns 0)',
    rc: '1 when a page was dropped, else 0',
    errors: { ...GUEST_OP, ...TMEM_OFF, ...NO_POOL },
    request: TMEM_PAGE_KEY,
    response: NO_BODY,
  },
  tmem_flush_object: {
    op: 'tmem_flush_object',
    hypercall: Hypercall.tmem_op,
    subop: TmemCmd.flush_object,
    domidProp: 'domid',
    xen: 'TMEM_FLUSH_OBJECT; rc is the pages dropped (Xen returns 0)',
    rc: 'pages dropped',
    errors: { ...GUEST_OP, ...TMEM_OFF, ...NO_POOL },
    request: { size: 32, fields: tmemKeyFields() },
    response: NO_BODY,
  },
  domctl_createdomain: {
    op: 'domctl_createdomain',
    hypercall: Hypercall.domctl,
    subop: DomCtl.createdomain,
    domidProp: 'domid',
    xen: 'XEN_DOMCTL_createdomain; header domid must be 0 (the hypervisor picks the id, as Xen does for 0); memory limits come with it',
    rc: 'the new domain\'s id',
    errors: {
      ...EPERM_CONTROL,
      EINVAL: 'gfn_count is above the largest guest-physical space (16 x machine frames, at most 2^30)',
      ENOSPC: 'no domain ids left, or no room for a per-domain swap area',
    },
    request: {
      size: 24,
      fields: [
        value('max_pages', 0, 'u64', 'maxPages', 'most pages the domain may hold'),
        value('gfn_count', 8, 'u64', 'gfnCount', 'size of its guest-physical space in pages'),
        value('trust_group', 16, 'u16', 'trustGroup', 'only domains of one trust group share frames'),
        zero('pad', 18, 'u16'),
        zero('pad2', 20, 'u32'),
      ],
    },
    response: NO_BODY,
  },
  domctl_destroydomain: {
    op: 'domctl_destroydomain',
    hypercall: Hypercall.domctl,
    subop: DomCtl.destroydomain,
    domidProp: 'domid',
    xen: 'XEN_DOMCTL_destroydomain',
    rc: '0',
    errors: { ...CONTROL_OP, EBUSY: 'the domain is the parent of a live fork' },
    request: HEADER_ONLY,
    response: NO_BODY,
  },
  domctl_pausedomain: {
    op: 'domctl_pausedomain',
    hypercall: Hypercall.domctl,
    subop: DomCtl.pausedomain,
    domidProp: 'domid',
    xen: 'XEN_DOMCTL_pausedomain',
    rc: '0',
    errors: CONTROL_OP,
    request: HEADER_ONLY,
    response: NO_BODY,
  },
  domctl_unpausedomain: {
    op: 'domctl_unpausedomain',
    hypercall: Hypercall.domctl,
    subop: DomCtl.unpausedomain,
    domidProp: 'domid',
    xen: 'XEN_DOMCTL_unpausedomain',
    rc: '0',
    errors: CONTROL_OP,
    request: HEADER_ONLY,
    response: NO_BODY,
  },
  domctl_max_mem: {
    op: 'domctl_max_mem',
    hypercall: Hypercall.domctl,
    subop: DomCtl.max_mem,
    domidProp: 'domid',
    xen: 'XEN_DOMCTL_max_mem (struct xen_domctl_max_mem); below the pages held it only stops growth, as Xen',
    rc: '0',
    errors: CONTROL_OP,
    request: { size: 8, fields: [value('max_memkb', 0, 'u64', 'maxMemKb', 'most memory the domain may hold, in KiB (a multiple of 4)')] },
    response: NO_BODY,
  },
  domctl_sharing_control: {
    op: 'domctl_sharing_control',
    hypercall: Hypercall.domctl,
    subop: DomCtl.mem_sharing_op,
    domidProp: 'domid',
    xen: 'XEN_DOMCTL_mem_sharing_op / XEN_DOMCTL_MEM_SHARING_CONTROL; sharing starts enabled here (Xen: disabled) so de-duplication works by default',
    rc: '0',
    errors: CONTROL_OP,
    request: {
      size: 8,
      fields: [
        selector('op', 0, 'u32', XEN_DOMCTL_MEM_SHARING_CONTROL, 'XEN_DOMCTL_MEM_SHARING_CONTROL'),
        value('enable', 4, 'u32', 'enable', '1: the domain\'s pages may be shared; 0: no new sharing'),
      ],
    },
    response: NO_BODY,
  },
};
