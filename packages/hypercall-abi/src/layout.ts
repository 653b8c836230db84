import { Hypercall, PagingOp, SharingOp, XenMem } from './op-numbers.js';
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
    request: NO_BODY,
    response: NO_BODY,
  },
  read_page: {
    op: 'read_page',
    hypercall: Hypercall.read_page,
    subop: 0,
    domidProp: 'domid',
    xen: 'none: a Xen guest reads its pages with loads; pagevisor hypercall 0x1000',
    rc: '0',
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
  sharing_nominate_gfn: {
    op: 'sharing_nominate_gfn',
    hypercall: Hypercall.memory_op,
    subop: XenMem.sharing_op,
    domidProp: 'domid',
    xen: 'XENMEM_sharing_op / XENMEM_sharing_op_nominate_gfn (struct xen_mem_sharing_op)',
    rc: '0; the handle is in the body',
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
  paging_nominate: {
    op: 'paging_nominate',
    hypercall: Hypercall.memory_op,
    subop: XenMem.paging_op,
    domidProp: 'domid',
    xen: 'XENMEM_paging_op / XENMEM_paging_op_nominate (struct xen_mem_paging_op)',
    rc: '0',
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
    request: pagingRequest(PagingOp.prep, 'XENMEM_paging_op_prep', 'paged-out page to back again', true),
    response: NO_BODY,
  },
};
