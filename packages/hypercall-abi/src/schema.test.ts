import { DOMID_SELF, Errno, HypervisorError, PAGE_SIZE } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import {
  encodeRequest,
  hypercallRequestSchema,
  MAX_EXTENTS,
  validateRequest,
  XENMEMF_populate_on_demand,
} from './index.js';

function einval(value: unknown): HypervisorError {
  try {
    validateRequest(value);
  } catch (e) {
    if (!(e instanceof HypervisorError)) throw e;
    expect(e.errno).toBe(Errno.EINVAL);
    // encodeRequest refuses the same value the same way, before producing any bytes.
    expect(() => encodeRequest(value as never)).toThrow(e.message);
    return e;
  }
  throw new Error(`expected EINVAL for ${JSON.stringify(value)}`);
}

const populate = { op: 'populate_physmap', domid: 1, extentOrder: 0, memFlags: 0, gfns: [1, 2] };
const increase = { op: 'increase_reservation', domid: 1, nrExtents: 4, extentOrder: 0, memFlags: 0 };
const read = { op: 'read_page', domid: 1, gfn: 7, offset: 0, length: PAGE_SIZE };
const write = { op: 'write_page', domid: 1, gfn: 7, offset: 0, data: new Uint8Array(PAGE_SIZE) };
const share = {
  op: 'sharing_share',
  sourceDomid: 1,
  sourceGfn: 2,
  sourceHandle: 3,
  clientDomid: 4,
  clientGfn: 5,
  clientHandle: 6,
};

describe('validateRequest', () => {
  it('accepts the ends of every range', () => {
    expect(validateRequest({ ...populate, domid: DOMID_SELF, extentOrder: 18, gfns: [0, 2 ** 53 - 1] })).toEqual({
      ...populate,
      domid: DOMID_SELF,
      extentOrder: 18,
      gfns: [0, 2 ** 53 - 1],
    });
    expect(validateRequest({ ...increase, nrExtents: MAX_EXTENTS, memFlags: XENMEMF_populate_on_demand })).toBeTruthy();
    expect(validateRequest({ ...read, offset: PAGE_SIZE, length: 0 })).toBeTruthy();
    expect(validateRequest({ ...write, offset: PAGE_SIZE - 1, data: new Uint8Array(1) })).toBeTruthy();
    expect(validateRequest({ ...share, sourceHandle: 0, clientHandle: 2 ** 53 - 1 })).toBeTruthy();
  });

  it('drops unknown keys', () => {
    expect(validateRequest({ op: 'current_reservation', domid: 3, extra: 1 })).toEqual({
      op: 'current_reservation',
      domid: 3,
    });
  });

  it('refuses an unknown op or a non-object', () => {
    expect(einval({ op: 'grant_table_op', domid: 1 }).detail).toMatch(
      /^op: must be one of increase_reservation, .*got "grant_table_op"$/,
    );
    expect(einval(null).detail).toMatch(/got null$/);
    expect(einval(42).op).toBe('hypercall');
  });

  it('refuses domids outside 0 .. DOMID_SELF', () => {
    expect(einval({ ...populate, domid: DOMID_SELF + 1 }).detail).toBe(
      'populate_physmap.domid: must be <= 32752, got 32753',
    );
    expect(einval({ ...populate, domid: -1 }).detail).toBe('populate_physmap.domid: must be >= 0, got -1');
    expect(einval({ ...populate, domid: 1.5 }).detail).toBe('populate_physmap.domid: must be a safe integer, got 1.5');
    expect(einval({ ...populate, domid: '1' }).detail).toBe('populate_physmap.domid: must be number, got "1"');
    expect(einval({ ...share, clientDomid: 0x7ff4 }).detail).toBe(
      'sharing_share.clientDomid: must be <= 32752, got 32756',
    );
    expect(einval({ op: 'current_reservation' }).detail).toMatch(/^current_reservation\.domid: must be number/);
  });

  it('refuses extent orders above MAX_ORDER', () => {
    expect(einval({ ...populate, extentOrder: 40 }).detail).toBe('populate_physmap.extentOrder: must be <= 18, got 40');
    expect(einval({ ...increase, extentOrder: 19 }).detail).toBe(
      'increase_reservation.extentOrder: must be <= 18, got 19',
    );
    expect(einval({ op: 'decrease_reservation', domid: 1, extentOrder: -1, gfns: [] }).detail).toBe(
      'decrease_reservation.extentOrder: must be >= 0, got -1',
    );
  });

  it('refuses unknown memFlags bits', () => {
    expect(einval({ ...populate, memFlags: 1 << 17 }).detail).toBe(
      'populate_physmap.memFlags: has unknown bits 0x20000 (known: 0x10000)',
    );
    expect(einval({ ...increase, memFlags: 2 ** 32 }).detail).toBe(
      'increase_reservation.memFlags: must be <= 4294967295, got 4294967296',
    );
  });

  it('bounds nrExtents and the gfn array', () => {
    expect(einval({ ...increase, nrExtents: MAX_EXTENTS + 1 }).detail).toBe(
      'increase_reservation.nrExtents: must be <= 1048576, got 1048577',
    );
    const tooMany = new Array<number>(MAX_EXTENTS + 1).fill(0);
    expect(einval({ ...populate, gfns: tooMany }).detail).toBe(
      'populate_physmap.gfns: must have <= 1048576 items, got 1048577 items',
    );
    expect(einval({ ...populate, gfns: 'x' }).detail).toBe('populate_physmap.gfns: must be array, got "x"');
  });

  it('refuses gfns that are not non-negative safe integers, naming the element', () => {
    expect(einval({ ...populate, gfns: [1, -1] }).detail).toBe('populate_physmap.gfns[1]: must be >= 0, got -1');
    expect(einval({ ...populate, gfns: [2 ** 53] }).detail).toBe(
      'populate_physmap.gfns[0]: must be <= 9007199254740991, got 9007199254740992',
    );
    expect(einval({ ...read, gfn: 0.5 }).detail).toBe('read_page.gfn: must be a safe integer, got 0.5');
    expect(einval({ ...populate, gfns: [-1, -2, -3, -4, -5] }).detail).toBe(
      'populate_physmap.gfns[0]: must be >= 0, got -1; populate_physmap.gfns[1]: must be >= 0, got -2; ' +
        'populate_physmap.gfns[2]: must be >= 0, got -3; and 2 more',
    );
  });

  it('keeps page accesses inside one page', () => {
    expect(einval({ ...read, offset: 1 }).detail).toBe(
      'read_page.length: offset + length must be <= 4096, got 1 + 4096',
    );
    expect(einval({ ...read, length: -1 }).detail).toBe('read_page.length: must be >= 0, got -1');
    expect(einval({ ...read, offset: PAGE_SIZE + 1, length: 0 }).detail).toBe(
      'read_page.offset: must be <= 4096, got 4097',
    );
    expect(einval({ ...read, length: PAGE_SIZE + 1 }).detail).toBe('read_page.length: must be <= 4096, got 4097');
    expect(einval({ ...write, offset: 8 }).detail).toBe(
      'write_page.data: offset + data.length must be <= 4096, got 8 + 4096',
    );
    expect(einval({ ...write, data: [1, 2] }).detail).toBe('write_page.data: must be a Uint8Array');
  });

  it('refuses handles that are not non-negative safe integers', () => {
    expect(einval({ ...share, sourceHandle: -1 }).detail).toBe('sharing_share.sourceHandle: must be >= 0, got -1');
    expect(einval({ ...share, clientHandle: Number.NaN }).detail).toMatch(
      /^sharing_share\.clientHandle: must be number/,
    );
  });

  it('checks paging requests, naming the field', () => {
    const page = new Uint8Array(PAGE_SIZE);
    expect(validateRequest({ op: 'paging_prep', domid: DOMID_SELF, gfn: 2 ** 53 - 1, data: page })).toEqual({
      op: 'paging_prep',
      domid: DOMID_SELF,
      gfn: 2 ** 53 - 1,
      data: page,
    });
    expect(validateRequest({ op: 'paging_prep', domid: 0, gfn: 0 })).toEqual({ op: 'paging_prep', domid: 0, gfn: 0 });
    expect(einval({ op: 'paging_nominate', domid: DOMID_SELF + 1, gfn: 1 }).detail).toBe(
      'paging_nominate.domid: must be <= 32752, got 32753',
    );
    expect(einval({ op: 'paging_evict', domid: 1, gfn: -1 }).detail).toBe('paging_evict.gfn: must be >= 0, got -1');
    expect(einval({ op: 'paging_evict', domid: 1 }).detail).toMatch(/^paging_evict\.gfn: must be number/);
    expect(einval({ op: 'paging_prep', domid: 1, gfn: 2 ** 53 }).detail).toBe(
      'paging_prep.gfn: must be <= 9007199254740991, got 9007199254740992',
    );
    expect(einval({ op: 'paging_prep', domid: 1, gfn: 1, data: new Uint8Array(0) }).detail).toBe(
      'paging_prep.data: must be 4096 bytes when present, got 0',
    );
    expect(einval({ op: 'paging_prep', domid: 1, gfn: 1, data: new Uint8Array(PAGE_SIZE + 1) }).detail).toBe(
      'paging_prep.data: must be 4096 bytes when present, got 4097',
    );
    expect(einval({ op: 'paging_prep', domid: 1, gfn: 1, data: [...page] }).detail).toBe(
      'paging_prep.data: must be a Uint8Array',
    );
  });

  it('exports one discriminated schema equivalent to the per-op ones', () => {
    expect(hypercallRequestSchema.safeParse(populate).success).toBe(true);
    expect(hypercallRequestSchema.safeParse({ ...populate, extentOrder: 19 }).success).toBe(false);
    expect(hypercallRequestSchema.safeParse({ ...populate, op: 'nope' }).success).toBe(false);
  });
});
