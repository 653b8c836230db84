import { DOMID_SELF } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { hex } from '../tests/fixtures.js';
import {
  DomCtl,
  encodeRequest,
  encodeResponse,
  FIELD_SIZE,
  HYPERCALL_OPS,
  Hypercall,
  OP_LAYOUTS,
  PagingOp,
  REQUEST_HEADER,
  RESPONSE_HEADER,
  SharingOp,
  TmemCmd,
  XENMEMF_populate_on_demand,
  XenMem,
  type StructLayout,
} from './index.js';

function checkStruct(where: string, s: StructLayout): void {
  const used = new Array<string | undefined>(s.size).fill(undefined);
  for (const f of s.fields) {
    const size = FIELD_SIZE[f.type];
    expect(f.offset % size, `${where}.${f.name} is naturally aligned`).toBe(0);
    expect(f.offset + size, `${where}.${f.name} lies inside the struct`).toBeLessThanOrEqual(s.size);
    for (let i = f.offset; i < f.offset + size; i++) {
      expect(used[i], `${where}.${f.name} overlaps ${used[i]}`).toBeUndefined();
      used[i] = f.name;
    }
    expect(f.role === 'value', `${where}.${f.name}: prop only on value fields`).toBe(f.prop !== undefined);
    expect(f.role === 'selector', `${where}.${f.name}: value only on selectors`).toBe(f.value !== undefined);
  }
  expect(used.every((u) => u !== undefined), `${where} has no gap (padding is an explicit field)`).toBe(true);
  const counts = s.fields.filter((f) => f.role === 'count').length;
  expect(counts, `${where}: one count field exactly when there is a tail`).toBe(s.tail ? 1 : 0);
  if (s.tail?.element === 'u64') expect(s.size % 8, `${where}: u64 tail stays aligned`).toBe(0);
}

describe('layout table', () => {
  it('describes every op, with sound structs', () => {
    expect(Object.keys(OP_LAYOUTS).sort()).toEqual([...HYPERCALL_OPS].sort());
    checkStruct('request header', REQUEST_HEADER);
    checkStruct('response header', RESPONSE_HEADER);
    for (const op of HYPERCALL_OPS) {
      const l = OP_LAYOUTS[op];
      expect(l.op).toBe(op);
      checkStruct(`${op} request`, l.request);
      checkStruct(`${op} response`, l.response);
    }
  });

  // xen-numbers.test.ts holds these against a transcription of Xen's public headers; this test
  // pins the tables themselves, so that an edit to either is seen twice.
  it("uses Xen's numbers for Xen's operations and numbers above Xen's range for pagevisor's", () => {
    expect(Hypercall.memory_op).toBe(12);
    expect(XenMem).toEqual({
      increase_reservation: 0,
      decrease_reservation: 1,
      current_reservation: 3,
      maximum_reservation: 4,
      populate_physmap: 6,
      maximum_gpfn: 14,
      get_sharing_freed_pages: 18,
      get_sharing_shared_pages: 19,
      paging_op: 20,
      sharing_op: 22,
      claim_pages: 24,
    });
    expect(SharingOp).toEqual({
      nominate_gfn: 0,
      share: 2,
      debug_gfn: 3,
      add_physmap: 6,
      audit: 7,
      range_share: 8,
      fork: 9,
      fork_reset: 10,
    });
    expect([Hypercall.domctl, Hypercall.tmem_op]).toEqual([36, 38]);
    expect(DomCtl).toEqual({ createdomain: 1, destroydomain: 2, pausedomain: 3, unpausedomain: 4, max_mem: 11, mem_sharing_op: 57 });
    expect(TmemCmd).toEqual({ new_pool: 1, destroy_pool: 2, put_page: 4, get_page: 5, flush_page: 6, flush_object: 7 });
    expect(Hypercall.madvise).toBeGreaterThanOrEqual(0x1000);
    expect(PagingOp).toEqual({ nominate: 0, evict: 1, prep: 2 });
    expect(XENMEMF_populate_on_demand).toBe(0x10000);
    expect(Hypercall.read_page).toBeGreaterThanOrEqual(0x1000);
    expect(Hypercall.write_page).toBeGreaterThanOrEqual(0x1000);
    expect(OP_LAYOUTS.sharing_share.request.fields[0]).toMatchObject({ name: 'op', role: 'selector', value: 2 });
  });

  it('gives every (hypercall, subop, selector) to one op only', () => {
    const keys = HYPERCALL_OPS.map((op) => {
      const l = OP_LAYOUTS[op];
      const sel = l.request.fields.find((f) => f.role === 'selector');
      return `${l.hypercall}/${l.subop}/${sel ? `${sel.offset}:${sel.value}` : '-'}`;
    });
    expect(new Set(keys).size).toBe(keys.length);
    // Ops sharing hypercall and subop must all carry a selector at the same place.
    const sharing = HYPERCALL_OPS.filter((op) => OP_LAYOUTS[op].subop === XenMem.sharing_op);
    expect(sharing).toEqual([
      'sharing_nominate_gfn',
      'sharing_share',
      'sharing_debug_gfn',
      'sharing_add_physmap',
      'sharing_audit',
      'sharing_range_share',
      'sharing_fork',
      'sharing_fork_reset',
    ]);
    for (const op of sharing) expect(OP_LAYOUTS[op].request.fields[0]).toMatchObject({ offset: 0, type: 'u32' });
    const paging = HYPERCALL_OPS.filter((op) => OP_LAYOUTS[op].subop === XenMem.paging_op);
    expect(paging).toEqual(['paging_nominate', 'paging_evict', 'paging_prep']);
    expect(paging.map((op) => OP_LAYOUTS[op].request.fields[0])).toMatchObject([
      { offset: 0, type: 'u32', role: 'selector', value: PagingOp.nominate },
      { offset: 0, type: 'u32', role: 'selector', value: PagingOp.evict },
      { offset: 0, type: 'u32', role: 'selector', value: PagingOp.prep },
    ]);
    // Only prep carries a buffer, and it may be left out.
    expect(paging.map((op) => OP_LAYOUTS[op].request.tail?.optional)).toEqual([undefined, undefined, true]);
  });
});

describe('golden bytes', () => {
  it('encodes populate_physmap little-endian with 64-bit gfns', () => {
    const buf = encodeRequest({
      op: 'populate_physmap',
      domid: DOMID_SELF,
      extentOrder: 9,
      memFlags: XENMEMF_populate_on_demand,
      gfns: [0x200, 2 ** 53 - 1],
    });
    expect(hex(buf)).toBe(
      [
        '0c000000', // hypercall 12
        '06000000', // XENMEM_populate_physmap
        'f07f', // DOMID_SELF
        '0000', // pad
        '20000000', // payload 32 bytes
        '02000000', // nr_extents 2
        '09000000', // extent_order 9
        '00000100', // XENMEMF_populate_on_demand
        '00000000', // pad
        '0002000000000000', // 0x200
        'ffffffffffff1f00', // 2^53 - 1
      ].join(''),
    );
  });

  it('encodes sharing_share with the source domain in the header', () => {
    const buf = encodeRequest({
      op: 'sharing_share',
      sourceDomid: 1,
      sourceGfn: 5,
      sourceHandle: 2 ** 32 + 1,
      clientDomid: 2,
      clientGfn: 6,
      clientHandle: 7,
    });
    expect(hex(buf)).toBe(
      '0c000000' + '16000000' + '0100' + '0000' + '28000000' +
        '02000000' + '0200' + '0000' +
        '0500000000000000' + '0100000001000000' + '0600000000000000' + '0700000000000000',
    );
  });

  it('encodes paging ops with the op selector, buffer length and inline page', () => {
    expect(hex(encodeRequest({ op: 'paging_evict', domid: 3, gfn: 2 ** 32 + 5 }))).toBe(
      '0c000000' + '14000000' + '0300' + '0000' + '10000000' + '01000000' + '00000000' + '0500000001000000',
    );
    expect(hex(encodeRequest({ op: 'paging_prep', domid: DOMID_SELF, gfn: 7 }))).toBe(
      '0c000000' + '14000000' + 'f07f' + '0000' + '10000000' + '02000000' + '00000000' + '0700000000000000',
    );
    const page = new Uint8Array(4096).fill(0xaa);
    const buf = encodeRequest({ op: 'paging_prep', domid: 1, gfn: 7, data: page });
    expect(hex(buf.subarray(0, 32))).toBe(
      '0c000000' + '14000000' + '0100' + '0000' + '10100000' + '02000000' + '00100000' + '0700000000000000',
    );
    expect(buf.length).toBe(32 + 4096);
    expect(buf.subarray(32).every((b) => b === 0xaa)).toBe(true);
  });

  it('encodes responses: negative rc as i64, body only on success, message last', () => {
    expect(hex(encodeResponse('read_page', { rc: -22, message: 'bad' }))).toBe(
      'eaffffff' + 'ffffffff' + '03000000' + '00000000' + '626164',
    );
    expect(hex(encodeResponse('sharing_nominate_gfn', { rc: 0, handle: 9 }))).toBe(
      '0000000000000000' + '00000000' + '00000000' + '0900000000000000',
    );
    expect(hex(encodeResponse('increase_reservation', { rc: 1, gfns: [3] }))).toBe(
      '0100000000000000' + '00000000' + '00000000' + '01000000' + '00000000' + '0300000000000000',
    );
  });
});
