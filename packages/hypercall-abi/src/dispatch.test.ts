import { asDomId, DOMID_SELF, Errno, HypervisorError, InvariantError, PAGE_SIZE, type DomId } from '@pagevisor/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anyRequest, FakeHandler, withU32 } from '../tests/fixtures.js';
import {
  decodeRequest,
  decodeResponse,
  dispatchHypercall,
  encodeRequest,
  HYPERCALL_OPS,
  OP_LAYOUTS,
  type HypercallHandler,
  type HypercallOp,
  type HypercallRequest,
  type HypercallResponse,
} from './index.js';

const DOM0 = asDomId(0);
const DOM1 = asDomId(1);
const DOM2 = asDomId(2);

function run(handler: HypercallHandler, caller: DomId, req: HypercallRequest): HypercallResponse {
  return decodeResponse(req.op, dispatchHypercall(handler, caller, encodeRequest(req)));
}

describe('dispatchHypercall', () => {
  it('runs every op through the handler and encodes its result', () => {
    const h = new FakeHandler();
    expect(run(h, DOM1, { op: 'increase_reservation', domid: 1, nrExtents: 2, extentOrder: 1, memFlags: 0 })).toEqual({
      rc: 2,
      gfns: [0x10000, 0x10002],
    });
    expect(run(h, DOM1, { op: 'populate_physmap', domid: 1, extentOrder: 0, memFlags: 0, gfns: [5, 6] })).toEqual({
      rc: 2,
    });
    expect(run(h, DOM1, { op: 'current_reservation', domid: 1 })).toEqual({ rc: 6 });
    expect(run(h, DOM1, { op: 'maximum_reservation', domid: 1 })).toEqual({ rc: 4096 });
    expect(run(h, DOM1, { op: 'write_page', domid: 1, gfn: 5, offset: 10, data: Uint8Array.of(1, 2, 3) })).toEqual({
      rc: 0,
    });
    expect(run(h, DOM1, { op: 'read_page', domid: 1, gfn: 5, offset: 9, length: 5 })).toEqual({
      rc: 0,
      data: Uint8Array.of(0, 1, 2, 3, 0),
    });
    expect(run(h, DOM1, { op: 'sharing_nominate_gfn', domid: 1, gfn: 5 })).toEqual({ rc: 0, handle: 1 });
    expect(run(h, DOM1, { op: 'sharing_nominate_gfn', domid: 1, gfn: 6 })).toEqual({ rc: 0, handle: 2 });
    const share = { op: 'sharing_share', sourceDomid: 1, sourceGfn: 5, sourceHandle: 1 } as const;
    expect(run(h, DOM1, { ...share, clientDomid: 1, clientGfn: 6, clientHandle: 2 })).toEqual({ rc: 0 });
    expect(run(h, DOM1, { op: 'read_page', domid: 1, gfn: 6, offset: 10, length: 3 }).data).toEqual(
      Uint8Array.of(1, 2, 3),
    );
    expect(run(h, DOM1, { op: 'decrease_reservation', domid: 1, extentOrder: 0, gfns: [5, 7] })).toEqual({ rc: 1 });
    expect(h.methods()).toEqual([
      'increaseReservation',
      'populatePhysmap',
      'currentReservation',
      'maximumReservation',
      'writePage',
      'readPage',
      'nominateGfn',
      'nominateGfn',
      'share',
      'readPage',
      'decreaseReservation',
    ]);
    expect(h.calls[1]).toEqual({ method: 'populatePhysmap', caller: 1, args: [1, [5, 6], 0, 0] });
  });

  it('runs the paging ops through the handler: nominate, evict, prep with and without content', () => {
    const h = new FakeHandler();
    run(h, DOM1, { op: 'populate_physmap', domid: 1, extentOrder: 0, memFlags: 0, gfns: [5, 6] });
    run(h, DOM1, { op: 'write_page', domid: 1, gfn: 5, offset: 0, data: Uint8Array.of(9) });
    expect(run(h, DOM1, { op: 'paging_nominate', domid: 1, gfn: 5 })).toEqual({ rc: 0 });
    expect(run(h, DOM1, { op: 'paging_evict', domid: 1, gfn: 5 })).toEqual({ rc: 0 });
    expect(run(h, DOM1, { op: 'read_page', domid: 1, gfn: 5, offset: 0, length: 1 })).toEqual({
      rc: -Errno.EAGAIN,
      message: 'gfn 5 of domain 1 is paged out',
    });
    const page = new Uint8Array(PAGE_SIZE).fill(7);
    expect(run(h, DOM0, { op: 'paging_prep', domid: 1, gfn: 5, data: page })).toEqual({ rc: 0 });
    expect(run(h, DOM1, { op: 'read_page', domid: 1, gfn: 5, offset: 4094, length: 2 }).data).toEqual(
      Uint8Array.of(7, 7),
    );
    // Prep without content gives the page back zeroed, for the pager to fill.
    run(h, DOM1, { op: 'paging_nominate', domid: 1, gfn: 6 });
    run(h, DOM1, { op: 'paging_evict', domid: 1, gfn: 6 });
    expect(run(h, DOM1, { op: 'paging_prep', domid: 1, gfn: 6 })).toEqual({ rc: 0 });
    expect(run(h, DOM1, { op: 'read_page', domid: 1, gfn: 6, offset: 0, length: 2 }).data).toEqual(new Uint8Array(2));
    const paging = h.calls.filter((c) => c.method.startsWith('paging'));
    expect(paging).toEqual([
      { method: 'pagingNominate', caller: 1, args: [1, 5] },
      { method: 'pagingEvict', caller: 1, args: [1, 5] },
      { method: 'pagingPrep', caller: 0, args: [1, 5, page] },
      { method: 'pagingNominate', caller: 1, args: [1, 6] },
      { method: 'pagingEvict', caller: 1, args: [1, 6] },
      { method: 'pagingPrep', caller: 1, args: [1, 6, undefined] },
    ]);
  });

  it("returns the paging handler's refusals as rc = -errno", () => {
    const h = new FakeHandler();
    run(h, DOM1, { op: 'populate_physmap', domid: 1, extentOrder: 0, memFlags: 0, gfns: [5] });
    expect(run(h, DOM1, { op: 'paging_evict', domid: 1, gfn: 5 })).toEqual({
      rc: -Errno.EBUSY,
      message: 'gfn 5 of domain 1 is not nominated',
    });
    run(h, DOM1, { op: 'paging_nominate', domid: 1, gfn: 5 });
    // A write after nomination makes the page unfit for eviction, as in Xen.
    run(h, DOM1, { op: 'write_page', domid: 1, gfn: 5, offset: 0, data: Uint8Array.of(1) });
    expect(run(h, DOM1, { op: 'paging_evict', domid: 1, gfn: 5 }).rc).toBe(-Errno.EBUSY);
    expect(run(h, DOM1, { op: 'paging_prep', domid: 1, gfn: 5 })).toEqual({
      rc: -Errno.EINVAL,
      message: 'gfn 5 of domain 1 is not paged out',
    });
    expect(run(h, DOM1, { op: 'paging_nominate', domid: 1, gfn: 8 }).rc).toBe(-Errno.ENOENT);
    expect(run(h, DOM1, { op: 'paging_nominate', domid: 2, gfn: 5 }).rc).toBe(-Errno.EPERM);
    // A bad buffer length is refused while decoding: the handler never sees it.
    const prep = encodeRequest({ op: 'paging_prep', domid: 1, gfn: 5 });
    const short = withU32(withU32(Uint8Array.of(...prep, 1, 2, 3), 12, 19), 20, 3);
    const before = h.calls.length;
    expect(decodeResponse('paging_prep', dispatchHypercall(h, DOM1, short))).toEqual({
      rc: -Errno.EINVAL,
      message: 'paging_prep.data: must be 4096 bytes when present, got 3',
    });
    expect(h.calls.length).toBe(before);
  });

  it('resolves DOMID_SELF to the caller in every domain argument', () => {
    const h = new FakeHandler();
    run(h, DOM2, { op: 'populate_physmap', domid: DOMID_SELF, extentOrder: 0, memFlags: 0, gfns: [1, 2] });
    run(h, DOM2, { op: 'current_reservation', domid: DOMID_SELF });
    const a = run(h, DOM2, { op: 'sharing_nominate_gfn', domid: DOMID_SELF, gfn: 1 }).handle!;
    const b = run(h, DOM2, { op: 'sharing_nominate_gfn', domid: DOMID_SELF, gfn: 2 }).handle!;
    const res = run(h, DOM2, {
      op: 'sharing_share',
      sourceDomid: DOMID_SELF,
      sourceGfn: 1,
      sourceHandle: a,
      clientDomid: DOMID_SELF,
      clientGfn: 2,
      clientHandle: b,
    });
    expect(res).toEqual({ rc: 0 });
    run(h, DOM2, { op: 'paging_nominate', domid: DOMID_SELF, gfn: 1 });
    run(h, DOM2, { op: 'paging_evict', domid: DOMID_SELF, gfn: 1 });
    expect(run(h, DOM2, { op: 'paging_prep', domid: DOMID_SELF, gfn: 1 })).toEqual({ rc: 0 });
    expect(h.calls.map((c) => [c.caller, c.args[0]])).toEqual([
      [2, 2],
      [2, 2],
      [2, 2],
      [2, 2],
      [2, 2],
      [2, 2],
      [2, 2],
      [2, 2],
    ]);
    expect(h.calls[4]!.args).toEqual([2, 1, a, 2, 2, b]);
  });

  it("turns the handler's HypervisorError into rc = -errno with its message", () => {
    const h = new FakeHandler(4);
    expect(run(h, DOM1, { op: 'current_reservation', domid: 2 })).toEqual({
      rc: -Errno.EPERM,
      message: 'domain 1 may not act on domain 2',
    });
    expect(run(h, DOM0, { op: 'maximum_reservation', domid: 9 })).toEqual({ rc: -Errno.ESRCH, message: 'no domain 9' });
    expect(run(h, DOM0, { op: 'populate_physmap', domid: 1, extentOrder: 3, memFlags: 0, gfns: [0] })).toEqual({
      rc: -Errno.ENOMEM,
      message: 'domain 1 is at max_pages 4',
    });
    // An error raised under another op name keeps that name in the message.
    expect(run(h, DOM0, { op: 'read_page', domid: 1, gfn: 3, offset: 0, length: 1 })).toEqual({
      rc: -Errno.ENOENT,
      message: 'gfn 3 of domain 1 is not populated',
    });
    const other: HypercallHandler = Object.assign(new FakeHandler(), {
      currentReservation(): number {
        throw new HypervisorError('EBUSY', 'p2m_lock', 'table is being resized');
      },
    });
    expect(run(other, DOM0, { op: 'current_reservation', domid: 0 })).toEqual({
      rc: -Errno.EBUSY,
      message: 'p2m_lock: table is being resized',
    });
  });

  it('never calls the handler for a refused request', () => {
    const h = new FakeHandler();
    const populate = encodeRequest({ op: 'populate_physmap', domid: 1, extentOrder: 0, memFlags: 0, gfns: [1] });
    const cases: [Uint8Array, number, string][] = [
      [populate.subarray(0, 20), Errno.EFAULT, 'memory_op: header.payload_length is 24 but 4 bytes follow the header'],
      [new Uint8Array(3), Errno.EFAULT, 'hypercall: request is 3 bytes, shorter than the 16-byte header'],
      [withU32(populate, 0, 99), Errno.ENOSYS, 'hypercall: unknown hypercall number 99 (0x63)'],
      [withU32(populate, 4, 5), Errno.ENOSYS, 'memory_op: unknown subop 5'],
      [withU32(populate, 20, 40), Errno.EINVAL, 'populate_physmap.extentOrder: must be <= 18, got 40'],
      [withU32(populate, 24, 3), Errno.EINVAL, 'populate_physmap.memFlags: has unknown bits 0x3 (known: 0x10000)'],
    ];
    for (const [buf, errno, message] of cases) {
      const res = decodeResponse('populate_physmap', dispatchHypercall(h, DOM1, buf));
      expect(res.rc).toBe(-errno);
      expect(res.message).toBe(message);
    }
    expect(h.calls).toEqual([]);
  });

  it('lets exceptions other than HypervisorError escape: they are bugs', () => {
    const broken: HypercallHandler = Object.assign(new FakeHandler(), {
      currentReservation(): number {
        throw new TypeError('oops');
      },
    });
    expect(() => dispatchHypercall(broken, DOM0, encodeRequest({ op: 'current_reservation', domid: 0 }))).toThrow(
      TypeError,
    );
  });

  it('refuses a caller that is not a domain id with ESRCH or EINVAL, never reaching the handler', () => {
    const h = new FakeHandler();
    const cur = encodeRequest({ op: 'current_reservation', domid: 0 });
    const cases: Array<[number, string]> = [
      [DOMID_SELF, 'ESRCH'],
      [0x7ff4, 'ESRCH'],
      [0xffff, 'ESRCH'],
      [-1, 'EINVAL'],
      [1.5, 'EINVAL'],
      [Number.NaN, 'EINVAL'],
    ];
    for (const [caller, errno] of cases) {
      const res = decodeResponse('current_reservation', dispatchHypercall(h, caller as DomId, cur));
      expect(res.rc, `caller ${caller}`).toBe(-Errno[errno as 'ESRCH']);
      expect(res.message).toMatch(new RegExp(`caller ${caller} is not a`));
    }
    expect(h.calls).toEqual([]);
  });

  it('asserts the handler keeps to the ABI', () => {
    const h = new FakeHandler();
    const cur = encodeRequest({ op: 'current_reservation', domid: 0 });
    expect(dispatchHypercall(h, DOM0, cur)).toBeInstanceOf(Uint8Array);
    const bad = (over: Partial<HypercallHandler>): HypercallHandler => Object.assign(new FakeHandler(), over);
    expect(() => dispatchHypercall(bad({ currentReservation: () => -1 }), DOM0, cur)).toThrow(InvariantError);
    const pop = encodeRequest({ op: 'populate_physmap', domid: 0, extentOrder: 0, memFlags: 0, gfns: [1] });
    expect(() => dispatchHypercall(bad({ populatePhysmap: () => 2 }), DOM0, pop)).toThrow(InvariantError);
    const read = encodeRequest({ op: 'read_page', domid: 0, gfn: 1, offset: 0, length: 4 });
    expect(() => dispatchHypercall(bad({ readPage: () => new Uint8Array(3) }), DOM0, read)).toThrow(InvariantError);
    const inc = encodeRequest({ op: 'increase_reservation', domid: 0, nrExtents: 1, extentOrder: 0, memFlags: 0 });
    expect(() => dispatchHypercall(bad({ increaseReservation: () => [1, 2] }), DOM0, inc)).toThrow(InvariantError);
  });
});

describe('dispatchHypercall fuzz', () => {
  const caller = fc.constantFrom(DOM0, DOM1, DOM2, asDomId(7));

  /**
   * Whatever the bytes, dispatch returns a response: the refusal decodeRequest gives (and no
   * handler call), or the handler's result or HypervisorError. Never an exception.
   */
  function check(buf: Uint8Array, who: DomId): void {
    const h = new FakeHandler(64);
    const out = dispatchHypercall(h, who, buf);
    let req: HypercallRequest;
    try {
      req = decodeRequest(buf);
    } catch (e) {
      expect(e).toBeInstanceOf(HypervisorError);
      const res = decodeResponse('current_reservation', out);
      expect(res.rc).toBe(-(e as HypervisorError).errno);
      expect(res.message).toBeTruthy();
      expect(h.calls).toEqual([]);
      return;
    }
    const res = decodeResponse(req.op, out);
    expect(h.calls).toHaveLength(1);
    if (res.rc < 0) {
      expect(Object.values(Errno)).toContain(-res.rc);
      expect(res.message).toBeTruthy();
    }
  }

  it('survives random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), caller, (buf, who) => check(buf, who)),
      { numRuns: 2000 },
    );
  });

  it('survives valid headers with random payloads', () => {
    const arb = fc.record({
      op: fc.constantFrom<HypercallOp>(...HYPERCALL_OPS),
      domid: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(DOMID_SELF), fc.integer({ min: 0, max: 0xffff })),
      payload: fc.uint8Array({ maxLength: 80 }),
      lengthSkew: fc.constantFrom(0, 0, 0, 1, -1),
    });
    fc.assert(
      fc.property(arb, caller, ({ op, domid, payload, lengthSkew }, who) => {
        const l = OP_LAYOUTS[op];
        const buf = new Uint8Array(16 + payload.length);
        const view = new DataView(buf.buffer);
        view.setUint32(0, l.hypercall, true);
        view.setUint32(4, l.subop, true);
        view.setUint16(8, domid, true);
        view.setUint32(12, Math.max(0, payload.length + lengthSkew), true);
        buf.set(payload, 16);
        check(buf, who);
      }),
      { numRuns: 2000 },
    );
  });

  it('survives mutated, truncated and extended valid requests', () => {
    const mutation = fc.record({
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      cut: fc.option(fc.nat()),
      extra: fc.uint8Array({ maxLength: 3 }),
    });
    fc.assert(
      fc.property(anyRequest, mutation, caller, (req, { flips, cut, extra }, who) => {
        let buf = encodeRequest(req);
        for (const [at, byte] of flips) if (buf.length > 0) buf[at % buf.length] = byte;
        if (cut !== null) buf = buf.subarray(0, cut % (buf.length + 1));
        buf = Uint8Array.of(...buf, ...extra);
        check(buf, who);
      }),
      { numRuns: 2000 },
    );
  });

  it('passes every valid request to the handler', () => {
    fc.assert(
      fc.property(anyRequest, caller, (req, who) => {
        const h = new FakeHandler(64);
        const res = decodeResponse(req.op, dispatchHypercall(h, who, encodeRequest(req)));
        expect(h.calls).toHaveLength(1);
        expect(res.rc >= 0 || Object.values(Errno).includes(-res.rc as never)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('dispatchHypercall responses', () => {
  it('gives each response bytes of its own, reserved fields zero, whether pooled (65 to 1024 bytes) or not', () => {
    const h = new FakeHandler();
    run(h, DOM1, { op: 'populate_physmap', domid: 1, extentOrder: 0, memFlags: 0, gfns: [0] });
    // Response bytes: 16 header + 8 body + the data. 41 and 1000 bytes read make the smallest and largest pooled.
    const lengths = [0, 1, 40, 41, 64, 100, 1000, 1001, PAGE_SIZE];
    const kept: { readonly length: number; readonly content: Uint8Array; readonly res: Uint8Array }[] = [];
    for (let round = 0; round < 120; round++) {
      const content = Uint8Array.from({ length: PAGE_SIZE }, (_, i) => (i * 31 + round * 7 + 1) & 0xff);
      run(h, DOM1, { op: 'write_page', domid: 1, gfn: 0, offset: 0, data: content });
      for (const length of lengths) {
        const res = dispatchHypercall(h, DOM1, encodeRequest({ op: 'read_page', domid: DOMID_SELF, gfn: 0, offset: 0, length }));
        kept.push({ length, content, res });
      }
    }
    for (const { length, content, res } of kept) {
      expect(res.length).toBe(24 + length);
      const pooled = res.length > 64 && res.length <= 1024;
      expect(res.buffer.byteLength > res.length, `${res.length}-byte response pooled`).toBe(pooled);
      // message_length, the header's pad and the body's pad are zero; the data is what was written then.
      expect([...res.subarray(8, 16), ...res.subarray(20, 24)].every((b) => b === 0)).toBe(true);
      const back = decodeResponse('read_page', res);
      expect(back.rc).toBe(0);
      expect(Buffer.from(back.data!).equals(Buffer.from(content.subarray(0, length)))).toBe(true);
    }
    // Refusals carry their message in the same buffers.
    const refused = dispatchHypercall(h, DOM1, encodeRequest({ op: 'read_page', domid: DOMID_SELF, gfn: 9, offset: 0, length: 1 }));
    expect(decodeResponse('read_page', refused)).toEqual({ rc: -Errno.ENOENT, message: 'gfn 9 of domain 1 is not populated' });
  });
});
