import { Errno, HypervisorError, InvariantError } from '@pagevisor/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { withU32 } from '../tests/fixtures.js';
import { decodeResponse, encodeResponse, HYPERCALL_OPS, type HypercallOp, type HypercallResponse } from './index.js';

const u53 = fc.oneof(fc.nat(), fc.maxSafeNat());

/** A successful response of each op, with the outputs the op carries. */
function successArb(op: HypercallOp): fc.Arbitrary<HypercallResponse> {
  switch (op) {
    case 'increase_reservation':
      return fc.array(u53, { maxLength: 20 }).map((gfns) => ({ rc: gfns.length, gfns }));
    case 'read_page':
      return fc.uint8Array({ maxLength: 64 }).map((data) => ({ rc: 0, data }));
    case 'sharing_nominate_gfn':
      return u53.map((handle) => ({ rc: 0, handle }));
    default:
      return u53.map((rc) => ({ rc }));
  }
}

const errorArb: fc.Arbitrary<HypercallResponse> = fc.record(
  { rc: fc.integer({ min: -(2 ** 53 - 1), max: -1 }), message: fc.string({ minLength: 1, unit: 'grapheme' }) },
  { requiredKeys: ['rc'] },
);

function refusal(fn: () => unknown): HypervisorError {
  try {
    fn();
  } catch (e) {
    if (e instanceof HypervisorError) return e;
    throw e;
  }
  throw new Error('expected a HypervisorError');
}

describe('encodeResponse / decodeResponse', () => {
  for (const op of HYPERCALL_OPS) {
    it(`round-trips ${op} successes and errors`, () => {
      fc.assert(
        fc.property(fc.oneof(successArb(op), errorArb), (res) => {
          const buf = encodeResponse(op, res);
          expect(decodeResponse(op, buf)).toEqual(res);
        }),
        { numRuns: 150 },
      );
    });
  }

  it('keeps a message on success and drops outputs of an error', () => {
    const ok = encodeResponse('populate_physmap', { rc: 3, message: 'ballooned ✓' });
    expect(decodeResponse('populate_physmap', ok)).toEqual({ rc: 3, message: 'ballooned ✓' });
    const err = encodeResponse('increase_reservation', { rc: -Errno.ENOMEM, gfns: [1, 2], message: 'full' });
    expect(decodeResponse('increase_reservation', err)).toEqual({ rc: -12, message: 'full' });
  });

  it('refuses every truncation and any trailing byte with EFAULT', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...HYPERCALL_OPS).chain((op) => fc.tuple(fc.constant(op), fc.oneof(successArb(op), errorArb))),
        ([op, res]) => {
          const buf = encodeResponse(op, res);
          for (let len = 0; len < buf.length; len++) {
            const e = refusal(() => decodeResponse(op, buf.subarray(0, len)));
            expect(e.errno, `${op} response cut to ${len} of ${buf.length}: ${e.message}`).toBe(Errno.EFAULT);
            expect(e.op).toBe(op);
          }
          if (res.message === undefined) {
            // Without a message, an extra byte has nowhere to belong.
            const e = refusal(() => decodeResponse(op, Uint8Array.of(...buf, 0)));
            expect(e.errno).toBe(Errno.EFAULT);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('refuses inconsistent counts and out-of-range values', () => {
    const inc = encodeResponse('increase_reservation', { rc: 2, gfns: [5, 6] });
    let e = refusal(() => decodeResponse('increase_reservation', withU32(inc, 16, 3)));
    expect(e.errno).toBe(Errno.EFAULT);
    expect(e.detail).toBe('response: needs 8 + 3 x 8 bytes (extent_start), got 24 bytes');
    e = refusal(() => decodeResponse('increase_reservation', withU32(inc, 0, 3)));
    expect([e.errno, e.detail]).toEqual([Errno.EFAULT, 'response has 2 gfns but rc 3']);
    e = refusal(() => decodeResponse('increase_reservation', withU32(withU32(inc, 16, 1), 8, 8)));
    expect(e.detail).toBe('response has 1 gfns but rc 2');
    e = refusal(() => decodeResponse('increase_reservation', withU32(inc, 8, 1000)));
    expect(e.detail).toBe('response.message_length is 1000 but only 24 bytes follow the header');

    const nominate = encodeResponse('sharing_nominate_gfn', { rc: 0, handle: 1 });
    e = refusal(() => decodeResponse('sharing_nominate_gfn', withU32(nominate, 20, 0x0020_0000)));
    expect(e.errno).toBe(Errno.EINVAL);
    expect(e.detail).toBe('response.handle: must be <= 2^53 - 1, got 0x20000000000001 (u64)');
    const one = encodeResponse('current_reservation', { rc: 1 });
    e = refusal(() => decodeResponse('current_reservation', withU32(one, 4, 0x4000_0000)));
    expect(e.errno).toBe(Errno.EINVAL);
    expect(e.detail).toMatch(/^response\.rc: must be within/);
    e = refusal(() => decodeResponse('current_reservation', withU32(one, 12, 1)));
    expect(e.detail).toBe('response.pad: reserved, must be 0, got 1');
  });

  it('treats a response that does not fit its op as a bug of its maker', () => {
    expect(() => encodeResponse('increase_reservation', { rc: 2, gfns: [1] })).toThrow(InvariantError);
    expect(() => encodeResponse('increase_reservation', { rc: 1 })).toThrow(InvariantError);
    expect(() => encodeResponse('increase_reservation', { rc: 1, gfns: [-1] })).toThrow(InvariantError);
    expect(() => encodeResponse('read_page', { rc: 0 })).toThrow(InvariantError);
    expect(() => encodeResponse('sharing_nominate_gfn', { rc: 0, handle: 2 ** 53 })).toThrow(InvariantError);
    expect(() => encodeResponse('current_reservation', { rc: 1.5 })).toThrow(InvariantError);
    expect(() => encodeResponse('current_reservation', { rc: Number.NaN })).toThrow(InvariantError);
  });
});
