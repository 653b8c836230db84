import { describe, expect, it } from 'vitest';
import {
  Errno,
  errnoName,
  HypervisorError,
  invariant,
  InvariantError,
  isRealDomId,
  mixSeed,
  P2M_TYPE_NAMES,
  P2mType,
  PAGE_SIZE,
  Prng,
  SimClock,
} from './index.js';

describe('HypervisorError', () => {
  it('carries errno, op and detail and names them in its message', () => {
    const e = new HypervisorError('ENOMEM', 'populate_physmap', 'no free frame for gfn 7');
    expect(e.errno).toBe(12);
    expect(e.errnoName).toBe('ENOMEM');
    expect(e.op).toBe('populate_physmap');
    expect(e.message).toBe('populate_physmap: ENOMEM: no free frame for gfn 7');
    expect(e).toBeInstanceOf(Error);
  });

  it('uses Xen errno values', () => {
    expect([Errno.EPERM, Errno.ESRCH, Errno.ENOMEM, Errno.EBUSY, Errno.EINVAL, Errno.ENOSPC]).toEqual([
      1, 3, 12, 16, 22, 28,
    ]);
    expect(errnoName(22)).toBe('EINVAL');
    expect(errnoName(999)).toBe('E999');
  });

  it('invariant throws InvariantError only when false', () => {
    expect(() => invariant(true, 'x')).not.toThrow();
    expect(() => invariant(0, 'refcount mismatch')).toThrow(InvariantError);
  });
});

describe('ids and pages', () => {
  it('tells real domain ids from reserved ones', () => {
    expect(isRealDomId(0)).toBe(true);
    expect(isRealDomId(0x7fef)).toBe(true);
    expect(isRealDomId(0x7ff0)).toBe(false);
    expect(isRealDomId(-1)).toBe(false);
    expect(isRealDomId(1.5)).toBe(false);
  });

  it('names every p2m type by value', () => {
    expect(PAGE_SIZE).toBe(4096);
    for (const [name, value] of Object.entries(P2mType)) expect(P2M_TYPE_NAMES[value]).toBe(name);
  });
});

describe('SimClock', () => {
  it('moves only when advanced and never backwards', () => {
    const c = new SimClock();
    expect(c.nowNs()).toBe(0);
    c.advance(1500);
    c.advanceTo(2000);
    expect(c.nowNs()).toBe(2000);
    expect(() => c.advanceTo(1999)).toThrow(/before now/);
    expect(() => c.advance(-1)).toThrow(RangeError);
    expect(c.nowNs()).toBe(2000);
  });
});

describe('Prng', () => {
  it('gives the same sequence for the same seed and another for another seed', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const sa = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(sa);
  });

  it('stays in range and spreads over it', () => {
    const p = new Prng(1);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const x = p.nextInt(10);
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(10);
      counts[x]!++;
    }
    for (const n of counts) expect(n).toBeGreaterThan(800);
  });

  it('fills words and bytes deterministically', () => {
    const w1 = new Uint32Array(16);
    const w2 = new Uint32Array(16);
    new Prng(7).fillU32(w1);
    new Prng(7).fillU32(w2);
    expect(w1).toEqual(w2);
    expect(w1.some((x) => x !== 0)).toBe(true);
    const bytes = new Uint8Array(5);
    new Prng(7).fillBytes(bytes);
    expect(Array.from(bytes).every((x) => x >= 0 && x < 256)).toBe(true);
    expect(mixSeed(1, 2)).not.toBe(mixSeed(2, 1));
  });
});
