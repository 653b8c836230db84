import { describe, expect, it } from 'vitest';
import { DOMID_SELF, HypervisorError, Prng, type DomId } from '@pagevisor/types';
import type { HypercallHandler } from './dispatch.js';
import { dispatchHypercall } from './dispatch.js';
import {
  fromHex,
  fuzzContext,
  fuzzHypervisor,
  mergeFuzzStats,
  mutate,
  newFuzzStats,
  randomGarbage,
  TICK,
  toHex,
  UNDECODED,
  validRequest,
  type FuzzTarget,
} from './fuzz-buffers.js';
import { OP_LAYOUTS, REQUEST_HEADER, type OpLayout } from './layout.js';
import { decodeRequest } from './request-codec.js';
import { HYPERCALL_OPS } from './request.js';
import { encodeResponse } from './response-codec.js';

const ctx = () => fuzzContext(64, [1, 2, 3]);

/** The errno decodeRequest refuses `buf` with, or 'ok'. */
function decodeOutcome(buf: Uint8Array): string {
  try {
    decodeRequest(buf);
    return 'ok';
  } catch (e) {
    if (e instanceof HypervisorError) return e.errnoName;
    throw e;
  }
}

/** A handler refusing every op with `errno` (whatever ops the ABI grows). */
function refusingHandler(errno: 'ENOSYS' | 'EPERM' = 'ENOSYS'): HypercallHandler {
  return new Proxy({} as HypercallHandler, {
    get: (_, name) => () => {
      throw new HypervisorError(errno, String(name), 'refused by the test handler');
    },
  });
}

function dispatchTarget(handler: HypercallHandler, audit: () => string[] = () => []): FuzzTarget {
  return { hypercall: (caller: DomId, buf: Uint8Array) => dispatchHypercall(handler, caller, buf), audit };
}

describe('validRequest', () => {
  it.each(HYPERCALL_OPS)('%s: header and lengths agree with the layout; values in range decode to the op', (op) => {
    const prng = new Prng(7);
    const layout = OP_LAYOUTS[op] as OpLayout;
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const buf = validRequest(prng, op, ctx());
      const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      expect(view.getUint32(0, true)).toBe(layout.hypercall);
      expect(view.getUint32(4, true)).toBe(layout.subop);
      expect(view.getUint32(12, true)).toBe(buf.length - REQUEST_HEADER.size);
      const outcome = decodeOutcome(buf);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (outcome === 'ok') expect(decodeRequest(buf).op).toBe(op);
    }
    // Well-formed: never refused for its shape, only for its values.
    expect([...outcomes.keys()].filter((k) => k !== 'ok' && k !== 'EINVAL')).toEqual([]);
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(40);
  });

  it('draws out-of-range values too, written raw (EINVAL), for the ops that carry values', () => {
    const prng = new Prng(8);
    let einval = 0;
    for (let i = 0; i < 2000; i++) if (decodeOutcome(validRequest(prng, undefined, ctx())) === 'EINVAL') einval++;
    expect(einval).toBeGreaterThan(100);
  });

  it('is deterministic: one seed, one sequence of buffers', () => {
    const run = (seed: number) => {
      const prng = new Prng(seed);
      const c = ctx();
      return Array.from({ length: 50 }, () => toHex(mutate(prng, validRequest(prng, undefined, c), c)) + toHex(randomGarbage(prng)));
    };
    expect(run(3)).toEqual(run(3));
    expect(run(3)).not.toEqual(run(4));
  });
});

describe('mutate and randomGarbage', () => {
  it('mutate leaves its input alone and usually changes the bytes', () => {
    const prng = new Prng(11);
    let changed = 0;
    for (let i = 0; i < 1000; i++) {
      const buf = validRequest(prng, undefined, ctx());
      const before = toHex(buf);
      const out = mutate(prng, buf, ctx());
      expect(toHex(buf)).toBe(before);
      if (toHex(out) !== before) changed++;
    }
    expect(changed).toBeGreaterThan(900);
  });

  it('mutations reach every kind of decoding refusal, and some still decode', () => {
    const prng = new Prng(12);
    const outcomes = new Set<string>();
    for (let i = 0; i < 5000; i++) outcomes.add(decodeOutcome(mutate(prng, validRequest(prng, undefined, ctx()), ctx())));
    expect([...outcomes].sort()).toEqual(['EFAULT', 'EINVAL', 'ENOSYS', 'ok']);
  });

  it('garbage is of every length, from empty to over a page, and the decoder only ever refuses it with HypervisorError', () => {
    const prng = new Prng(13);
    const lengths = new Set<number>();
    const outcomes = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const buf = randomGarbage(prng);
      lengths.add(buf.length);
      outcomes.add(decodeOutcome(buf));
    }
    expect(lengths.has(0)).toBe(true);
    expect(Math.max(...lengths)).toBeGreaterThan(4096);
    expect([...lengths].filter((n) => n < REQUEST_HEADER.size).length).toBeGreaterThan(5);
    expect(outcomes.has('EFAULT') && outcomes.has('ENOSYS') && outcomes.has('EINVAL')).toBe(true);
  });

  it('hex round-trips', () => {
    const buf = randomGarbage(new Prng(5));
    expect(fromHex(toHex(buf))).toEqual(buf);
  });
});

describe('fuzzHypervisor', () => {
  it('counts calls, outcomes and audits of a sound target', () => {
    const stats = fuzzHypervisor(dispatchTarget(refusingHandler()), new Prng(1), 2500, { ctx: ctx(), batch: 1000 });
    expect(stats.failures).toEqual([]);
    expect(stats.calls).toBe(2500);
    expect(stats.valid + stats.mutated + stats.garbage).toBe(2500);
    expect(stats.audits).toBe(3); // at 1000, 2000 and the end
    expect(stats.malformed).toBe(stats.byOp[UNDECODED]!.calls);
    expect(stats.malformed).toBeGreaterThan(500);
    // The handler refuses everything: every decoded op is refused with ENOSYS, never ok.
    for (const [op, s] of Object.entries(stats.byOp)) {
      expect(s.ok, op).toBe(0);
      if (op !== UNDECODED) expect(s.refused, op).toEqual({ ENOSYS: s.calls });
    }
    expect(Object.keys(stats.byOp).length).toBe(HYPERCALL_OPS.length + 1);
    const total = Object.values(stats.refusals).reduce((a, b) => a + b, 0);
    expect(total).toBe(2500);
  });

  it('reports an exception escaping, with the op, caller and request', () => {
    const bad = new Proxy({} as HypercallHandler, {
      get: (_, name) => () => {
        if (name === 'readPage') throw new TypeError('boom');
        throw new HypervisorError('EPERM', String(name), 'no');
      },
    });
    const stats = fuzzHypervisor(dispatchTarget(bad), new Prng(2), 5000, { ctx: ctx() });
    expect(stats.failures).toHaveLength(1);
    const f = stats.failures[0]!;
    expect(f.kind).toBe('throw');
    expect(f.op).toBe('read_page');
    expect(f.message).toContain('TypeError: boom');
    expect(decodeRequest(fromHex(f.hex)).op).toBe('read_page');
    expect(stats.calls).toBe(f.call + 1); // stopped at the first failure
  });

  it('reports an unknown errno, a success for an undecodable request and an undecodable response', () => {
    const target = (response: (buf: Uint8Array) => Uint8Array): FuzzTarget => ({ hypercall: (_c, buf) => response(buf), audit: () => [] });
    const unknownErrno = fuzzHypervisor(target(() => encodeResponse('current_reservation', { rc: -999 })), new Prng(3), 100, { ctx: ctx() });
    expect(unknownErrno.failures.map((f) => f.kind)).toEqual(['errno']);
    expect(unknownErrno.refusals['E999']).toBe(1);

    const alwaysOk = fuzzHypervisor(target(() => encodeResponse('current_reservation', { rc: 0 })), new Prng(3), 1000, { ctx: ctx(), maxFailures: 1000 });
    expect(alwaysOk.failures.length).toBeGreaterThan(0);
    expect(alwaysOk.failures.length).toBe(alwaysOk.malformed + alwaysOk.failures.filter((f) => f.kind === 'response').length);
    expect(alwaysOk.failures.some((f) => f.kind === 'rc' && f.op === UNDECODED)).toBe(true);

    const short = fuzzHypervisor(target(() => new Uint8Array(3)), new Prng(3), 100, { ctx: ctx() });
    expect(short.failures.map((f) => f.kind)).toEqual(['response']);
  });

  it('reports a refusal with another errno than the decoder gives', () => {
    // Refuses every request with EPERM, even those the decoder would refuse with EFAULT, ENOSYS or EINVAL.
    const eperm = (caller: DomId, buf: Uint8Array): Uint8Array => {
      if (decodeOutcome(buf) === 'ok') return dispatchHypercall(refusingHandler('EPERM'), caller, buf);
      return encodeResponse('current_reservation', { rc: -1 });
    };
    const stats = fuzzHypervisor({ hypercall: eperm, audit: () => [] }, new Prng(4), 1000, { ctx: ctx() });
    expect(stats.failures).toHaveLength(1);
    expect(stats.failures[0]!.kind).toBe('rc');
    expect(stats.failures[0]!.message).toMatch(/the decoder refuses with E\w+ .* but rc is -1 \(EPERM\)/);
  });

  it('reports a refused call that changed the snapshot', () => {
    let state = 0;
    const target: FuzzTarget = {
      hypercall: (caller, buf) => {
        state++;
        return dispatchHypercall(refusingHandler('EPERM'), caller, buf);
      },
      audit: () => [],
    };
    const stats = fuzzHypervisor(target, new Prng(5), 100, { ctx: ctx(), snapshot: () => String(state) });
    expect(stats.failures).toHaveLength(1);
    expect(stats.failures[0]!.kind).toBe('changed');
    expect(stats.failures[0]!.message).toContain('before 0\nafter  1');
  });

  it('snapshots only the fraction of calls asked for, twice each', () => {
    let snapshots = 0;
    const stats = fuzzHypervisor(dispatchTarget(refusingHandler()), new Prng(6), 2000, {
      ctx: ctx(),
      snapshot: () => {
        snapshots++;
        return 'same';
      },
      snapshotRate: 0.25,
    });
    expect(stats.failures).toEqual([]);
    // Every call is refused, so every snapshotted call is compared.
    expect(snapshots).toBe(2 * stats.snapshotsCompared);
    expect(stats.snapshotsCompared).toBeGreaterThan(400);
    expect(stats.snapshotsCompared).toBeLessThan(600);
  });

  it('reports a failing audit with the last request of the batch, and ticks at its own pace', () => {
    let calls = 0;
    const ticks: number[] = [];
    const target: FuzzTarget = {
      hypercall: (caller, buf) => {
        calls++;
        return dispatchHypercall(refusingHandler(), caller, buf);
      },
      audit: () => (calls > 250 ? ['frame 3: refcount 2, rmap 1'] : []),
    };
    const stats = fuzzHypervisor(target, new Prng(7), 1000, { ctx: ctx(), batch: 100, tick: (n) => ticks.push(n), tickEvery: 40 });
    expect(stats.failures).toHaveLength(1);
    expect(stats.failures[0]).toMatchObject({ kind: 'audit', call: 299, message: 'frame 3: refcount 2, rmap 1' });
    expect(stats.failures[0]!.hex.length).toBeGreaterThan(0);
    expect(stats.audits).toBe(3);
    expect(ticks).toEqual([40, 80, 120, 160, 200, 240, 280]);
  });

  it('a throwing audit is a failure too', () => {
    const stats = fuzzHypervisor(
      dispatchTarget(refusingHandler(), () => {
        throw new RangeError('bad frame');
      }),
      new Prng(8),
      10,
      { ctx: ctx() },
    );
    expect(stats.failures.map((f) => [f.kind, f.message.split('\n')[0]])).toEqual([['audit', 'audit threw: RangeError: bad frame']]);
  });

  it('a throwing tick is a failure of the tick, not of a call', () => {
    const stats = fuzzHypervisor(
      dispatchTarget(refusingHandler()),
      new Prng(10),
      500,
      {
        ctx: ctx(),
        tickEvery: 100,
        tick: (n) => {
          if (n === 300) throw new RangeError('scanner broke');
        },
      },
    );
    expect(stats.failures).toHaveLength(1);
    expect(stats.failures[0]).toMatchObject({ kind: 'throw', op: TICK, call: 300, hex: '' });
    expect(stats.failures[0]!.message).toContain('RangeError: scanner broke');
    expect(stats.calls).toBe(300);
  });

  it('with an audit after every call, names the tick that broke the state', () => {
    let broken = false;
    const stats = fuzzHypervisor(dispatchTarget(refusingHandler(), () => (broken ? ['broken by the tick'] : [])), new Prng(11), 500, {
      ctx: ctx(),
      batch: 1,
      tickEvery: 100,
      tick: (n) => {
        if (n === 200) broken = true;
      },
    });
    expect(stats.failures.map((f) => [f.kind, f.op, f.call])).toEqual([['audit', TICK, 200]]);
    expect(stats.audits).toBe(200 + 2); // after each of calls 0..199, and after the ticks at 100 and 200
  });

  it('draws only the ops asked for, even through mutations', () => {
    const stats = fuzzHypervisor(dispatchTarget(refusingHandler()), new Prng(12), 2000, { ctx: ctx(), ops: ['read_page', 'write_page'] });
    expect(stats.failures).toEqual([]);
    expect(Object.keys(stats.byOp).sort()).toEqual([UNDECODED, 'read_page', 'write_page']);
    expect(stats.byOp['read_page']!.calls).toBeGreaterThan(200);
  });

  it('keeps the handles it sees and merges runs', () => {
    let next = 100;
    const handler = new Proxy({} as HypercallHandler, {
      get: (_, name) =>
        name === 'nominateGfn'
          ? () => next++
          : () => {
              throw new HypervisorError('EPERM', String(name), 'no');
            },
    });
    const c = ctx();
    const a = fuzzHypervisor(dispatchTarget(handler), new Prng(9), 3000, { ctx: c });
    expect(a.failures).toEqual([]);
    expect(a.byOp['sharing_nominate_gfn']!.ok).toBeGreaterThan(0);
    expect(c.handles.length).toBeGreaterThan(0);
    expect(c.handles.length).toBeLessThanOrEqual(32);
    expect(c.handles.every((h) => h.handle >= 100 && h.handle < next && h.domid < DOMID_SELF)).toBe(true);
    const total = newFuzzStats();
    mergeFuzzStats(total, a);
    mergeFuzzStats(total, a);
    expect(total.calls).toBe(6000);
    expect(total.byOp['sharing_nominate_gfn']!.ok).toBe(2 * a.byOp['sharing_nominate_gfn']!.ok);
  });
});
