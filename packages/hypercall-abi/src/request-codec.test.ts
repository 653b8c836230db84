import { DOMID_SELF, Errno, HypervisorError, PAGE_SIZE } from '@pagevisor/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anyRequest, requestArbs, withU16, withU32 } from '../tests/fixtures.js';
import { decodeRequest, encodeRequest, HYPERCALL_OPS, Hypercall, XenMem, type HypercallRequest } from './index.js';

/** Runs `fn` and returns the HypervisorError it throws (failing when it throws anything else). */
function refusal(fn: () => unknown): HypervisorError {
  try {
    fn();
  } catch (e) {
    if (e instanceof HypervisorError) return e;
    throw e;
  }
  throw new Error('expected a HypervisorError, nothing was thrown');
}

const HEADER = 16;

describe('encodeRequest / decodeRequest', () => {
  for (const op of HYPERCALL_OPS) {
    it(`round-trips ${op}`, () => {
      fc.assert(
        fc.property(requestArbs[op], (req) => {
          const buf = encodeRequest(req);
          const back = decodeRequest(buf);
          expect(back).toEqual(req);
          // The encoding is canonical: re-encoding the decoded request gives the same bytes
          // (compared as Buffers: a deep toEqual of page-sized arrays is slow).
          expect(Buffer.from(encodeRequest(back)).equals(Buffer.from(buf))).toBe(true);
        }),
        // Requests carrying a whole page cost far more to compare: fewer runs for those.
        { numRuns: op === 'paging_prep' || op === 'write_page' ? 50 : 200 },
      );
    });
  }

  it('encodes a typed request unvalidated (validate: false) to the same bytes, leaving the validation to the decoder', () => {
    fc.assert(
      fc.property(anyRequest, (req) => {
        expect(Buffer.from(encodeRequest(req, { validate: false })).equals(Buffer.from(encodeRequest(req)))).toBe(true);
      }),
      { numRuns: 300 },
    );
    // Out of the schema's range but encodable: encoded, then refused where it is decoded.
    const bad = encodeRequest({ op: 'populate_physmap', domid: DOMID_SELF, extentOrder: 40, memFlags: 0, gfns: [1] }, { validate: false });
    expect(() => decodeRequest(bad)).toThrow('populate_physmap.extentOrder: must be <= 18, got 40');
    // Not held by its field: refused before anything is written, never wrapped.
    expect(() => encodeRequest({ op: 'read_page', domid: 1, gfn: -1, offset: 0, length: 1 }, { validate: false })).toThrow('read_page.gfn: must be >= 0, got -1');
    expect(() => encodeRequest({ op: 'read_page', domid: 1, gfn: 1.5, offset: 0, length: 1 }, { validate: false })).toThrow('read_page.gfn: must be an integer, got 1.5');
    expect(() => encodeRequest({ op: 'read_page', domid: 70_000, gfn: 1, offset: 0, length: 1 }, { validate: false })).toThrow('read_page.domid: must be a domain id (0 to 65535), got 70000');
  });

  it('decodes a request that sits at an offset inside a larger buffer', () => {
    const req: HypercallRequest = { op: 'read_page', domid: 3, gfn: 2 ** 40 + 7, offset: 100, length: 28 };
    const inner = encodeRequest(req);
    const outer = new Uint8Array(inner.length + 11);
    outer.set(inner, 5);
    expect(decodeRequest(outer.subarray(5, 5 + inner.length))).toEqual(req);
  });

  it('gives write_page data as a view of the request bytes', () => {
    const buf = encodeRequest({ op: 'write_page', domid: 1, gfn: 2, offset: 4000, data: Uint8Array.of(1, 2, 3) });
    const req = decodeRequest(buf);
    expect(req.op === 'write_page' && Array.from(req.data)).toEqual([1, 2, 3]);
    expect(req.op === 'write_page' && req.data.buffer).toBe(buf.buffer);
  });
});

describe('paging requests', () => {
  const page = new Uint8Array(PAGE_SIZE).map((_, i) => i & 0xff);

  it('decodes prep without a buffer as a request without data, and with one as a view', () => {
    const bare = decodeRequest(encodeRequest({ op: 'paging_prep', domid: 1, gfn: 9 }));
    expect(bare).toEqual({ op: 'paging_prep', domid: 1, gfn: 9 });
    expect('data' in bare).toBe(false);
    const buf = encodeRequest({ op: 'paging_prep', domid: 1, gfn: 9, data: page });
    const req = decodeRequest(buf);
    expect(req.op === 'paging_prep' && req.data).toEqual(page);
    expect(req.op === 'paging_prep' && req.data?.buffer).toBe(buf.buffer);
  });

  it('refuses every truncation of each paging op with EFAULT', () => {
    const reqs: HypercallRequest[] = [
      { op: 'paging_nominate', domid: 1, gfn: 2 },
      { op: 'paging_evict', domid: 1, gfn: 2 },
      { op: 'paging_prep', domid: 1, gfn: 2 },
      { op: 'paging_prep', domid: 1, gfn: 2, data: page },
    ];
    for (const req of reqs) {
      const buf = encodeRequest(req);
      for (let len = 0; len < buf.length; len++) {
        const e = refusal(() => decodeRequest(buf.subarray(0, len)));
        expect(e.errno, `${req.op} cut to ${len} of ${buf.length} bytes: ${e.message}`).toBe(Errno.EFAULT);
      }
      // Cut consistently (payload_length lowered too): still EFAULT, from the op struct.
      if (buf.length > HEADER) {
        const cut = withU32(buf.subarray(0, buf.length - 1), 12, buf.length - 1 - HEADER);
        expect(refusal(() => decodeRequest(cut)).errno).toBe(Errno.EFAULT);
      }
    }
  });

  it('refuses a buffer length other than 0 or PAGE_SIZE with EINVAL naming data', () => {
    const prep = encodeRequest({ op: 'paging_prep', domid: 1, gfn: 2 });
    for (const n of [1, 5, PAGE_SIZE - 1, PAGE_SIZE + 1]) {
      const buf = new Uint8Array(prep.length + n);
      buf.set(prep);
      const e = refusal(() => decodeRequest(withU32(withU32(buf, 12, 16 + n), HEADER + 4, n)));
      expect([e.errno, e.op, e.detail]).toEqual([
        Errno.EINVAL,
        'paging_prep',
        `paging_prep.data: must be ${PAGE_SIZE} bytes when present, got ${n}`,
      ]);
    }
    // A buffer_length that disagrees with the bytes present is a length error.
    const full = encodeRequest({ op: 'paging_prep', domid: 1, gfn: 2, data: page });
    let e = refusal(() => decodeRequest(withU32(full, HEADER + 4, 0)));
    expect([e.errno, e.detail]).toEqual([Errno.EFAULT, 'paging_prep: needs 16 + 0 x 1 bytes (buffer), got 4112 bytes']);
    e = refusal(() => decodeRequest(withU32(prep, HEADER + 4, PAGE_SIZE)));
    expect(e.errno).toBe(Errno.EFAULT);
  });

  it('refuses unknown paging op numbers, reserved bits and huge gfns', () => {
    const nominate = encodeRequest({ op: 'paging_nominate', domid: 1, gfn: 5 });
    for (const pagingOp of [3, 4, 99, 0xffff_ffff]) {
      const e = refusal(() => decodeRequest(withU32(nominate, HEADER, pagingOp)));
      expect([e.errno, e.op, e.detail]).toEqual([Errno.ENOSYS, 'paging_op', `unknown op ${pagingOp}`]);
    }
    // Switching nominate to evict by its selector alone gives a valid evict.
    expect(decodeRequest(withU32(nominate, HEADER, 1))).toEqual({ op: 'paging_evict', domid: 1, gfn: 5 });
    let e = refusal(() => decodeRequest(withU32(nominate, HEADER + 4, 1)));
    expect([e.errno, e.detail]).toEqual([Errno.EINVAL, 'paging_nominate.pad: reserved, must be 0, got 1']);
    e = refusal(() => decodeRequest(withU32(nominate, HEADER + 12, 0x20_0000)));
    expect([e.errno, e.detail]).toEqual([
      Errno.EINVAL,
      'paging_nominate.gfn: must be <= 2^53 - 1, got 0x20000000000005 (u64)',
    ]);
    const evict = encodeRequest({ op: 'paging_evict', domid: 1, gfn: 5 });
    e = refusal(() => decodeRequest(withU16(evict, 8, DOMID_SELF + 1)));
    expect(e.detail).toBe('paging_evict.domid: must be <= 32752, got 32753');
    const header = withU32(withU32(new Uint8Array(HEADER + 3), 0, Hypercall.memory_op), 4, XenMem.paging_op);
    e = refusal(() => decodeRequest(withU32(header, 12, 3)));
    expect([e.errno, e.op]).toEqual([Errno.EFAULT, 'paging_op']);
  });
});

describe('decodeRequest refusals', () => {
  it('refuses every truncation of every op with EFAULT', () => {
    fc.assert(
      fc.property(anyRequest, (req) => {
        const buf = encodeRequest(req);
        for (let len = 0; len < buf.length; len++) {
          const e = refusal(() => decodeRequest(buf.subarray(0, len)));
          expect(e.errno, `${req.op} cut to ${len} of ${buf.length} bytes: ${e.message}`).toBe(Errno.EFAULT);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('refuses trailing bytes and lengths that disagree with EFAULT', () => {
    const buf = encodeRequest({ op: 'populate_physmap', domid: 1, extentOrder: 0, memFlags: 0, gfns: [1, 2] });
    const longer = new Uint8Array(buf.length + 1);
    longer.set(buf);
    let e = refusal(() => decodeRequest(longer));
    expect(e.errno).toBe(Errno.EFAULT);
    expect(e.message).toContain('payload_length is 32 but 33 bytes follow');

    // payload_length agrees with the buffer, but nr_extents says three gfns follow.
    e = refusal(() => decodeRequest(withU32(buf, HEADER, 3)));
    expect(e.errno).toBe(Errno.EFAULT);
    expect(e.message).toContain('populate_physmap: needs 16 + 3 x 8 bytes (extent_start), got 32 bytes');

    // A lying nr_extents must not make the decoder allocate or read past the buffer.
    e = refusal(() => decodeRequest(withU32(buf, HEADER, 0xffff_ffff)));
    expect(e.errno).toBe(Errno.EFAULT);

    const empty = encodeRequest({ op: 'current_reservation', domid: 1 });
    e = refusal(() => decodeRequest(Uint8Array.of(...empty, 0, 0, 0, 0)));
    expect(e.errno).toBe(Errno.EFAULT);
    e = refusal(() => decodeRequest(withU32(Uint8Array.of(...empty, 0, 0, 0, 0), 12, 4)));
    expect(e.errno).toBe(Errno.EFAULT);
    expect(e.message).toContain('current_reservation: needs 0 bytes, got 4');

    const write = encodeRequest({ op: 'write_page', domid: 1, gfn: 0, offset: 0, data: new Uint8Array(8) });
    e = refusal(() => decodeRequest(withU32(write, HEADER + 12, 9)));
    expect(e.errno).toBe(Errno.EFAULT);
  });

  it('refuses unknown hypercall, subop and sharing op numbers with ENOSYS', () => {
    const base = encodeRequest({ op: 'current_reservation', domid: 1 });
    let e = refusal(() => decodeRequest(withU32(base, 0, 13)));
    expect([e.errno, e.op, e.detail]).toEqual([Errno.ENOSYS, 'hypercall', 'unknown hypercall number 13 (0xd)']);
    e = refusal(() => decodeRequest(withU32(base, 0, 0x1003)));
    expect(e.errno).toBe(Errno.ENOSYS);

    for (const subop of [5, 7, 21, 23, 25, 0xffff_ffff]) {
      e = refusal(() => decodeRequest(withU32(base, 4, subop)));
      expect([e.errno, e.op, e.detail]).toEqual([Errno.ENOSYS, 'memory_op', `unknown subop ${subop}`]);
    }
    const read = encodeRequest({ op: 'read_page', domid: 1, gfn: 0, offset: 0, length: 1 });
    e = refusal(() => decodeRequest(withU32(read, 4, 1)));
    expect([e.errno, e.op]).toEqual([Errno.ENOSYS, 'read_page']);

    const nominate = encodeRequest({ op: 'sharing_nominate_gfn', domid: 1, gfn: 5 });
    for (const sharingOp of [1, 4, 5, 11, 99]) {
      e = refusal(() => decodeRequest(withU32(nominate, HEADER, sharingOp)));
      expect([e.errno, e.op, e.detail]).toEqual([Errno.ENOSYS, 'sharing_op', `unknown op ${sharingOp}`]);
    }
    // A known sharing op with the other op's struct length is a length error, not ENOSYS.
    e = refusal(() => decodeRequest(withU32(nominate, HEADER, 2)));
    expect([e.errno, e.op]).toEqual([Errno.EFAULT, 'sharing_share']);
  });

  it('refuses a sharing_op payload too short for its op field with EFAULT', () => {
    const header = withU32(withU32(new Uint8Array(HEADER + 2), 0, Hypercall.memory_op), 4, XenMem.sharing_op);
    const e = refusal(() => decodeRequest(withU32(header, 12, 2)));
    expect([e.errno, e.op]).toEqual([Errno.EFAULT, 'sharing_op']);
  });

  it('refuses 64-bit values above 2^53 - 1 with EINVAL naming the field', () => {
    const buf = encodeRequest({ op: 'populate_physmap', domid: 1, extentOrder: 0, memFlags: 0, gfns: [1, 2, 3] });
    let e = refusal(() => decodeRequest(withU32(buf, HEADER + 16 + 8 * 2 + 4, 0x20_0000)));
    expect(e.errno).toBe(Errno.EINVAL);
    expect(e.detail).toBe('populate_physmap.gfns[2]: must be <= 2^53 - 1, got 0x20000000000003 (u64)');

    const share = encodeRequest({
      op: 'sharing_share',
      sourceDomid: 1,
      sourceGfn: 1,
      sourceHandle: 1,
      clientDomid: 2,
      clientGfn: 2,
      clientHandle: 2,
    });
    e = refusal(() => decodeRequest(withU32(share, HEADER + 36, 0xffff_ffff)));
    expect(e.errno).toBe(Errno.EINVAL);
    expect(e.detail).toContain('sharing_share.clientHandle: must be <= 2^53 - 1');
  });

  it('refuses non-zero reserved fields with EINVAL naming the field', () => {
    const buf = encodeRequest({ op: 'decrease_reservation', domid: 1, extentOrder: 0, gfns: [] });
    let e = refusal(() => decodeRequest(withU16(buf, 10, 1)));
    expect([e.errno, e.detail]).toEqual([Errno.EINVAL, 'header.pad: reserved, must be 0, got 1']);
    e = refusal(() => decodeRequest(withU32(buf, HEADER + 8, 0x10000)));
    expect(e.errno).toBe(Errno.EINVAL);
    expect(e.detail).toBe('decrease_reservation.mem_flags: reserved, must be 0, got 65536');
    e = refusal(() => decodeRequest(withU32(buf, HEADER + 12, 7)));
    expect(e.detail).toBe('decrease_reservation.pad: reserved, must be 0, got 7');
  });

  it('validates decoded values with the op schema (EINVAL naming the field)', () => {
    const populate = encodeRequest({ op: 'populate_physmap', domid: 1, extentOrder: 0, memFlags: 0, gfns: [1] });
    let e = refusal(() => decodeRequest(withU32(populate, HEADER + 4, 40)));
    expect([e.errno, e.op]).toEqual([Errno.EINVAL, 'populate_physmap']);
    expect(e.detail).toBe('populate_physmap.extentOrder: must be <= 18, got 40');
    expect(e.message).toBe('populate_physmap: EINVAL: populate_physmap.extentOrder: must be <= 18, got 40');

    e = refusal(() => decodeRequest(withU16(populate, 8, DOMID_SELF + 1)));
    expect(e.detail).toBe('populate_physmap.domid: must be <= 32752, got 32753');

    const read = encodeRequest({ op: 'read_page', domid: 1, gfn: 1, offset: 4000, length: 96 });
    e = refusal(() => decodeRequest(withU32(read, HEADER + 12, 97)));
    expect(e.detail).toBe('read_page.length: offset + length must be <= 4096, got 4000 + 97');

    const increase = encodeRequest({ op: 'increase_reservation', domid: 1, nrExtents: 1, extentOrder: 0, memFlags: 0 });
    e = refusal(() => decodeRequest(withU32(increase, HEADER, 2 ** 20 + 1)));
    expect(e.detail).toBe('increase_reservation.nrExtents: must be <= 1048576, got 1048577');
    e = refusal(() => decodeRequest(withU32(increase, HEADER + 8, 1)));
    expect(e.detail).toBe('increase_reservation.memFlags: has unknown bits 0x1 (known: 0x10000)');

    const write = encodeRequest({ op: 'write_page', domid: 1, gfn: 0, offset: 4095, data: new Uint8Array(1) });
    const bigger = withU32(withU32(Uint8Array.of(...write, 0), 12, 18), HEADER + 12, 2);
    e = refusal(() => decodeRequest(bigger));
    expect(e.detail).toBe('write_page.data: offset + data.length must be <= 4096, got 4095 + 2');
  });
});
