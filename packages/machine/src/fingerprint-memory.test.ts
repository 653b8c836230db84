import { asMfn, PAGE_SIZE, type Mfn } from '@pagevisor/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import xxhash from 'xxhash-wasm';
import { Fingerprinter, setGeneratedPage, ZERO_FINGERPRINT_HIGH, ZERO_FINGERPRINT_LOW } from './fingerprint.js';
import { FINGERPRINT_MAX_FRAMES, FingerprintMemory } from './fingerprint-memory.js';
import { pageBuffer } from './page-hash.js';
import { ZERO_PAGE } from './zero-page.js';

const m = asMfn;
const arbPage = fc.uint8Array({ minLength: PAGE_SIZE, maxLength: PAGE_SIZE });
/** A store of less than a page: offset and bytes that fit the frame. */
const arbPartial = fc
  .integer({ min: 0, max: PAGE_SIZE - 1 })
  .chain((offset) => fc.record({ offset: fc.constant(offset), bytes: fc.uint8Array({ minLength: 1, maxLength: Math.min(64, PAGE_SIZE - offset) }) }));
/** A store: a whole page or a partial one. */
const arbStore = fc.oneof(
  arbPartial,
  arbPage.map((bytes) => ({ offset: 0, bytes })),
);
const arbFingerprint = fc.record({ lo: fc.integer({ min: 0, max: 0xffffffff }), hi: fc.integer({ min: 0, max: 0xffffffff }) });

function page(seed: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i++) p[i] = (i * 31 + seed * 7 + 1) & 0xff;
  return p;
}

function store(mem: FingerprintMemory, mfn: Mfn, s: { offset: number; bytes: Uint8Array }): void {
  mem.write(mfn, s.offset, s.bytes, 0, s.bytes.length);
}

function readFrame(mem: FingerprintMemory, mfn: number): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE);
  mem.read(m(mfn), 0, out, 0, PAGE_SIZE);
  return out;
}

function fingerprint(mem: FingerprintMemory, mfn: number): [number, number] {
  return [mem.fingerprintHigh(m(mfn)), mem.fingerprintLow(m(mfn))];
}

describe('the fingerprint H of a page', () => {
  it('is the XXH64 of the page (xxhash-wasm as the reference), Z that of zeros', async () => {
    const { h64Raw } = await xxhash();
    const halves = (p: Uint8Array): number[] => {
      const h = h64Raw(p);
      return [Number(BigInt.asUintN(32, h)), Number(h >> 32n)];
    };
    const fp = new Fingerprinter();
    fc.assert(
      fc.property(arbPage, (p) => {
        fp.ofPage(p);
        expect([fp.lo, fp.hi]).toEqual(halves(p));
      }),
      { numRuns: 100 },
    );
    expect([ZERO_FINGERPRINT_LOW, ZERO_FINGERPRINT_HIGH]).toEqual(halves(ZERO_PAGE));
    // Single bits in every word but the first two: with the rest zeros, a page of only its first
    // 8 bytes is a generated page, whose fingerprint is those bytes xor Z.
    for (let bit = 64; bit < PAGE_SIZE * 8; bit += 97) {
      const p = new Uint8Array(PAGE_SIZE);
      p[bit >>> 3] = 1 << (bit & 7);
      fp.ofPage(p);
      expect([fp.lo, fp.hi]).toEqual(halves(p));
    }
    const first = new Uint8Array(PAGE_SIZE);
    first[5] = 0x10;
    fp.ofPage(first);
    expect([fp.lo, fp.hi]).toEqual([ZERO_FINGERPRINT_LOW, (ZERO_FINGERPRINT_HIGH ^ (0x10 << 8)) >>> 0]);
  });

  it('takes a zero page with two words set by setGeneratedPage for that fingerprint, Z for the zero page', () => {
    const fp = new Fingerprinter();
    const words = new Uint32Array(PAGE_SIZE / 4);
    const page = new Uint8Array(words.buffer);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), (lo, hi) => {
        setGeneratedPage(words, lo, hi);
        fp.ofPage(page);
        expect([fp.lo, fp.hi]).toEqual([lo, hi]);
        const read = new Uint8Array(PAGE_SIZE);
        fp.bytes(lo, hi, 0, read, 0, PAGE_SIZE);
        expect(Buffer.compare(read, page)).toBe(0);
      }),
      { numRuns: 200 },
    );
    setGeneratedPage(words, ZERO_FINGERPRINT_LOW, ZERO_FINGERPRINT_HIGH);
    expect(page.every((b) => b === 0)).toBe(true);
  });

  it('gives back F for the page generated from F: H(bytes(F)) = F, bytes(Z) is zeros', () => {
    const fp = new Fingerprinter();
    const buf = new Uint8Array(PAGE_SIZE);
    fc.assert(
      fc.property(fc.oneof(arbFingerprint, fc.constant({ lo: ZERO_FINGERPRINT_LOW, hi: ZERO_FINGERPRINT_HIGH })), ({ lo, hi }) => {
        fp.bytes(lo, hi, 0, buf, 0, PAGE_SIZE);
        fp.ofPage(buf);
        expect([fp.lo, fp.hi]).toEqual([lo, hi]);
      }),
      { numRuns: 200 },
    );
    fp.bytes(ZERO_FINGERPRINT_LOW, ZERO_FINGERPRINT_HIGH, 0, buf, 0, PAGE_SIZE);
    expect(buf).toEqual(ZERO_PAGE);
  });

  it('hashes a page at any offset of any buffer, WebAssembly memory included, alike', () => {
    const fp = new Fingerprinter();
    const p = page(3);
    fp.ofPage(p);
    const want = [fp.lo, fp.hi];
    const big = new Uint8Array(PAGE_SIZE + 7);
    big.set(p, 5);
    fp.ofPage(page(4)); // another page in between, so the next is hashed, not remembered
    fp.ofPage(big, 5);
    expect([fp.lo, fp.hi]).toEqual(want);
    const wasm = pageBuffer(1);
    wasm.set(p);
    fp.ofPage(page(4));
    fp.ofPage(wasm);
    expect([fp.lo, fp.hi]).toEqual(want);
  });
});

describe('the fingerprint of a scratch page changed in place', () => {
  it('follows the change: the last page is remembered by content, not by buffer', () => {
    const mem = new FingerprintMemory({ frames: 4 });
    const scratch = page(9);
    const h1 = mem.hashPage(scratch);
    mem.write(m(1), 0, scratch, 0, PAGE_SIZE);
    scratch[PAGE_SIZE - 1]! ^= 0x80;
    const h2 = mem.hashPage(scratch);
    expect(h2).not.toBe(h1);
    expect(mem.frameEquals(m(1), scratch)).toBe(false);
    mem.write(m(2), 0, scratch, 0, PAGE_SIZE);
    expect(mem.framesEqual(m(1), m(2))).toBe(false);
    expect(mem.hashFrame(m(2))).toBe(h2);
  });
});

describe('FingerprintMemory', () => {
  it('says what its frames hold', () => {
    expect(new FingerprintMemory({ frames: 1 }).contents).toBe('fingerprints');
  });

  it('makes frames given equal whole pages equal, whatever they held before; different pages different', () => {
    const mem = new FingerprintMemory({ frames: 64, chunkFrames: 16 });
    fc.assert(
      fc.property(arbPage, arbPage, arbStore, (p, q, before) => {
        store(mem, m(1), before);
        mem.write(m(1), 0, p, 0, PAGE_SIZE);
        mem.write(m(40), 0, p, 0, PAGE_SIZE);
        mem.write(m(2), 0, q, 0, PAGE_SIZE);
        expect(mem.framesEqual(m(1), m(40))).toBe(true);
        expect(mem.compareFrames(m(1), m(40))).toBe(0);
        expect(mem.frameEquals(m(40), p)).toBe(true);
        expect(mem.hashFrame(m(1))).toBe(mem.hashFrame(m(40)));
        expect(mem.checksumFrame(m(1))).toBe(mem.checksumFrame(m(40)));
        const same = Buffer.compare(p, q) === 0;
        expect(mem.framesEqual(m(1), m(2))).toBe(same);
        expect(mem.frameEquals(m(2), p)).toBe(same);
      }),
      { numRuns: 100 },
    );
  });

  it('holds the zero page in untouched, zeroed and zero-written frames, reads it as zeros, allocating nothing for it', () => {
    const mem = new FingerprintMemory({ frames: 64, chunkFrames: 16 });
    mem.zeroFrame(m(20));
    mem.write(m(21), 0, new Uint8Array(PAGE_SIZE), 0, PAGE_SIZE);
    mem.write(m(22), 100, new Uint8Array(50), 0, 50); // zeros into the zero page change nothing
    mem.copyFrame(m(23), m(40));
    expect(mem.allocatedChunks).toBe(0);
    for (const f of [20, 21, 22, 23, 40]) {
      expect(mem.isZeroFrame(m(f))).toBe(true);
      expect(mem.framesEqual(m(f), m(0))).toBe(true);
      expect(mem.frameEquals(m(f), ZERO_PAGE)).toBe(true);
      expect(mem.hashFrame(m(f))).toBe(mem.hashPage(ZERO_PAGE));
      expect(fingerprint(mem, f)).toEqual([ZERO_FINGERPRINT_HIGH, ZERO_FINGERPRINT_LOW]);
      const dst = new Uint8Array(PAGE_SIZE).fill(0xaa);
      mem.read(m(f), 0, dst, 0, PAGE_SIZE);
      expect(dst).toEqual(ZERO_PAGE);
    }
    // A written frame zeroed again is the zero page; its chunk stays.
    mem.write(m(5), 7, Uint8Array.of(1), 0, 1);
    expect(mem.isZeroFrame(m(5))).toBe(false);
    expect(mem.allocatedChunks).toBe(1);
    expect(mem.allocatedBytes).toBe(16 * 8);
    mem.zeroFrame(m(5));
    expect(mem.isZeroFrame(m(5))).toBe(true);
    expect(mem.framesEqual(m(5), m(40))).toBe(true);
    expect([...readFrame(mem, 5)].every((b) => b === 0)).toBe(true);
  });

  it('copies frames within and across chunks, from untouched chunks too, leaving the source', () => {
    const mem = new FingerprintMemory({ frames: 64, chunkFrames: 16 });
    mem.write(m(3), 0, page(3), 0, PAGE_SIZE);
    mem.write(m(3), 10, Uint8Array.of(1, 2, 3), 0, 3);
    const before = fingerprint(mem, 3);
    mem.copyFrame(m(4), m(3));
    mem.copyFrame(m(50), m(3));
    expect(mem.framesEqual(m(4), m(3))).toBe(true);
    expect(mem.framesEqual(m(50), m(3))).toBe(true);
    expect(readFrame(mem, 50)).toEqual(readFrame(mem, 3));
    mem.copyFrame(m(4), m(33));
    expect(mem.isZeroFrame(m(4))).toBe(true);
    expect(fingerprint(mem, 3)).toEqual(before);
    // Copies then take equal stores alike.
    mem.write(m(50), 9, Uint8Array.of(7), 0, 1);
    mem.write(m(3), 9, Uint8Array.of(7), 0, 1);
    expect(mem.framesEqual(m(50), m(3))).toBe(true);
  });

  it('folds partial stores deterministically: equal frames given equal stores stay equal, different stores part them', () => {
    fc.assert(
      fc.property(arbPage, fc.array(arbStore, { maxLength: 8 }), arbPartial, arbPartial, (start, stores, x, y) => {
        const mem = new FingerprintMemory({ frames: 40, chunkFrames: 16 });
        mem.write(m(1), 0, start, 0, PAGE_SIZE);
        mem.copyFrame(m(30), m(1));
        for (const s of stores) {
          store(mem, m(1), s);
          store(mem, m(30), s);
        }
        expect(mem.framesEqual(m(1), m(30))).toBe(true);
        mem.copyFrame(m(2), m(1));
        store(mem, m(1), x);
        store(mem, m(2), y);
        // Two stores of different bytes: different frames (false merges have probability 2^-64).
        const current = readFrame(mem, 30);
        const changesX = Buffer.compare(x.bytes, current.subarray(x.offset, x.offset + x.bytes.length)) !== 0;
        const changesY = Buffer.compare(y.bytes, current.subarray(y.offset, y.offset + y.bytes.length)) !== 0;
        const sameStore = x.offset === y.offset && Buffer.compare(x.bytes, y.bytes) === 0;
        expect(mem.framesEqual(m(1), m(2))).toBe(sameStore || (!changesX && !changesY));
        expect(mem.framesEqual(m(1), m(30))).toBe(!changesX);
      }),
      { numRuns: 100 },
    );
  });

  it('tells stores apart by offset and length as well as by bytes', () => {
    const mem = new FingerprintMemory({ frames: 8 });
    fc.assert(
      fc.property(arbPage, arbPartial, fc.integer({ min: 1, max: PAGE_SIZE - 1 }), (p, s, shift) => {
        const offset = (s.offset + shift) % (PAGE_SIZE - s.bytes.length + 1);
        fc.pre(offset !== s.offset);
        mem.write(m(1), 0, p, 0, PAGE_SIZE);
        mem.copyFrame(m(2), m(1));
        mem.copyFrame(m(3), m(1));
        store(mem, m(1), s);
        mem.write(m(2), offset, s.bytes, 0, s.bytes.length);
        expect(mem.framesEqual(m(1), m(2))).toBe(false);
        // The same bytes and a zero more (the tail's padding is not the length).
        if (s.offset + s.bytes.length < PAGE_SIZE) {
          const longer = new Uint8Array(s.bytes.length + 1);
          longer.set(s.bytes);
          mem.write(m(3), s.offset, longer, 0, longer.length);
          expect(mem.framesEqual(m(1), m(3))).toBe(false);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('never makes two different frames equal by one store (the fold is a permutation of fingerprints)', () => {
    const mem = new FingerprintMemory({ frames: 8 });
    fc.assert(
      fc.property(arbPage, arbPage, arbPartial, (p, q, s) => {
        fc.pre(Buffer.compare(p, q) !== 0);
        mem.write(m(1), 0, p, 0, PAGE_SIZE);
        mem.write(m(2), 0, q, 0, PAGE_SIZE);
        store(mem, m(1), s);
        store(mem, m(2), s);
        expect(mem.framesEqual(m(1), m(2))).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('leaves a frame as it is on a store of no bytes or of the whole page it reads as, and the zero page on zeros; takes any other partial store as a change', () => {
    const mem = new FingerprintMemory({ frames: 8 });
    fc.assert(
      fc.property(arbPage, arbPartial, fc.integer({ min: 1, max: PAGE_SIZE - 1 }), (p, s, len) => {
        mem.write(m(1), 0, p, 0, PAGE_SIZE);
        store(mem, m(1), s);
        const before = fingerprint(mem, 1);
        mem.write(m(1), s.offset, s.bytes, 0, 0);
        expect(fingerprint(mem, 1)).toEqual(before);
        const whole = readFrame(mem, 1);
        mem.write(m(1), 0, whole, 0, PAGE_SIZE);
        expect(fingerprint(mem, 1)).toEqual(before);
        // The bytes it reads as, stored back over part of it: not kept, so not known to be the same.
        const offset = Math.min(s.offset, PAGE_SIZE - len);
        mem.write(m(1), offset, whole, offset, len);
        expect(fingerprint(mem, 1)).not.toEqual(before);
        mem.zeroFrame(m(2));
        mem.write(m(2), offset, new Uint8Array(len), 0, len);
        expect(mem.isZeroFrame(m(2))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('reads generated bytes: deterministic, any range a slice of the whole page, and a page read and written back whole is the same content', () => {
    fc.assert(
      fc.property(fc.array(arbStore, { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: PAGE_SIZE }), fc.nat(), (stores, offset, n) => {
        const mem = new FingerprintMemory({ frames: 20, chunkFrames: 16 });
        for (const s of stores) store(mem, m(3), s);
        const whole = readFrame(mem, 3);
        expect(readFrame(mem, 3)).toEqual(whole);
        const length = n % (PAGE_SIZE - offset + 1);
        const part = new Uint8Array(length + 2).fill(0xee);
        mem.read(m(3), offset, part, 1, length);
        expect(part.subarray(1, 1 + length)).toEqual(whole.subarray(offset, offset + length));
        expect([part[0], part[length + 1]]).toEqual([0xee, 0xee]);
        // Swapped out and in, through another chunk.
        mem.write(m(18), 0, whole, 0, PAGE_SIZE);
        expect(mem.framesEqual(m(18), m(3))).toBe(true);
        expect(mem.frameEquals(m(3), whole)).toBe(true);
        expect(mem.hashPage(whole)).toBe(mem.hashFrame(m(3)));
      }),
      { numRuns: 100 },
    );
  });

  it('does what Fingerprinter.afterWrite predicts, and setFingerprint restores a frame', () => {
    const fp = new Fingerprinter();
    fc.assert(
      fc.property(fc.array(arbStore, { maxLength: 10 }), (stores) => {
        const mem = new FingerprintMemory({ frames: 4 });
        let lo = ZERO_FINGERPRINT_LOW;
        let hi = ZERO_FINGERPRINT_HIGH;
        for (const s of stores) {
          store(mem, m(2), s);
          fp.afterWrite(lo, hi, s.offset, s.bytes, 0, s.bytes.length);
          lo = fp.lo;
          hi = fp.hi;
          expect(fingerprint(mem, 2)).toEqual([hi, lo]);
        }
        mem.setFingerprint(m(3), lo, hi);
        expect(mem.framesEqual(m(2), m(3))).toBe(true);
        const bytes = new Uint8Array(PAGE_SIZE);
        fp.bytes(lo, hi, 0, bytes, 0, PAGE_SIZE);
        expect(readFrame(mem, 2)).toEqual(bytes);
      }),
      { numRuns: 100 },
    );
  });

  it('orders frames totally by fingerprint (unsigned, high half first), 0 exactly when framesEqual', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(arbFingerprint, fc.constant({ lo: ZERO_FINGERPRINT_LOW, hi: ZERO_FINGERPRINT_HIGH })), { minLength: 2, maxLength: 12 }), (fps) => {
        const mem = new FingerprintMemory({ frames: 32, chunkFrames: 8 });
        // Frames spread over chunks; some duplicates, and frame 31 left untouched (Z).
        const frames: number[] = [31];
        fps.forEach((f, i) => {
          mem.setFingerprint(m(i * 2), f.lo, f.hi);
          mem.copyFrame(m(i * 2 + 1), m(i * 2));
          frames.push(i * 2, i * 2 + 1);
        });
        for (const a of frames) {
          for (const b of frames) {
            const c = mem.compareFrames(m(a), m(b));
            expect(Math.sign(c) + Math.sign(mem.compareFrames(m(b), m(a)))).toBe(0);
            expect(c === 0).toBe(mem.framesEqual(m(a), m(b)));
            const [ha, la] = fingerprint(mem, a);
            const [hb, lb] = fingerprint(mem, b);
            expect(Math.sign(c)).toBe(Math.sign(ha !== hb ? ha - hb : la - lb));
          }
        }
        const sorted = [...frames].sort((a, b) => mem.compareFrames(m(a), m(b)));
        for (let i = 1; i < sorted.length; i++) expect(mem.compareFrames(m(sorted[i - 1]!), m(sorted[i]!))).toBeLessThanOrEqual(0);
      }),
      { numRuns: 100 },
    );
  });

  it('hashes a page as the frame holding it; its checksum is another function of the fingerprint, changed by a change', () => {
    const mem = new FingerprintMemory({ frames: 4 });
    let differFromHash = 0;
    fc.assert(
      fc.property(arbPage, arbPartial, (p, s) => {
        mem.write(m(1), 0, p, 0, PAGE_SIZE);
        expect(mem.hashPage(p)).toBe(mem.hashFrame(m(1)));
        const before = fingerprint(mem, 1);
        const checksumBefore = mem.checksumFrame(m(1));
        store(mem, m(1), s);
        expect(mem.hashPage(readFrame(mem, 1))).toBe(mem.hashFrame(m(1)));
        const changed = fingerprint(mem, 1).join() !== before.join();
        expect(mem.checksumFrame(m(1)) !== checksumBefore).toBe(changed);
        if (mem.checksumFrame(m(1)) !== mem.hashFrame(m(1))) differFromHash++;
      }),
      { numRuns: 50 },
    );
    expect(differFromHash).toBe(50);
    expect(mem.checksumFrame(m(3))).not.toBe(mem.hashFrame(m(3)));
  });

  it('constructs a 4 TiB machine (2^30 frames) without allocating, and stores into its last frame', () => {
    const mem = new FingerprintMemory({ frames: FINGERPRINT_MAX_FRAMES });
    expect(mem.chunkCount).toBe(16384);
    expect(mem.allocatedBytes).toBe(0);
    const last = m(FINGERPRINT_MAX_FRAMES - 1);
    expect(mem.isZeroFrame(last)).toBe(true);
    mem.write(last, 4090, Uint8Array.of(1, 2, 3, 4, 5, 6), 0, 6);
    mem.copyFrame(m(0), last);
    expect(mem.isZeroFrame(last)).toBe(false);
    expect(mem.framesEqual(m(0), last)).toBe(true);
    expect(mem.compareFrames(last, m(1))).not.toBe(0);
    expect(mem.allocatedChunks).toBe(2);
    expect(mem.allocatedBytes).toBe(2 * 65536 * 8);
    // A machine that is not a whole number of chunks: the last chunk is the frames left.
    const odd = new FingerprintMemory({ frames: 20, chunkFrames: 16 });
    odd.write(m(19), 0, page(1), 0, PAGE_SIZE);
    expect(odd.allocatedBytes).toBe(4 * 8);
    expect(odd.frameEquals(m(19), page(1))).toBe(true);
  });

  it('throws RangeError on bad sizes, frames, ranges and pages', () => {
    for (const frames of [0, -1, 1.5, Number.NaN, FINGERPRINT_MAX_FRAMES + 1]) {
      expect(() => new FingerprintMemory({ frames })).toThrow(RangeError);
    }
    for (const chunkFrames of [0, 3, 1.5, 2 ** 21]) {
      expect(() => new FingerprintMemory({ frames: 64, chunkFrames })).toThrow(RangeError);
    }
    const mem = new FingerprintMemory({ frames: 64, chunkFrames: 16 });
    const buf = new Uint8Array(PAGE_SIZE);
    for (const mfn of [64, -1, 1.5, Number.NaN, 2 ** 32]) {
      const f = mfn as Mfn;
      expect(() => mem.read(f, 0, buf, 0, 1)).toThrow(RangeError);
      expect(() => mem.write(f, 0, buf, 0, 1)).toThrow(RangeError);
      expect(() => mem.copyFrame(m(0), f)).toThrow(RangeError);
      expect(() => mem.copyFrame(f, m(0))).toThrow(RangeError);
      expect(() => mem.zeroFrame(f)).toThrow(RangeError);
      expect(() => mem.isZeroFrame(f)).toThrow(RangeError);
      expect(() => mem.framesEqual(f, m(0))).toThrow(RangeError);
      expect(() => mem.compareFrames(m(0), f)).toThrow(RangeError);
      expect(() => mem.frameEquals(f, buf)).toThrow(RangeError);
      expect(() => mem.hashFrame(f)).toThrow(RangeError);
      expect(() => mem.checksumFrame(f)).toThrow(RangeError);
      expect(() => mem.setFingerprint(f, 0, 0)).toThrow(RangeError);
    }
    expect(() => mem.write(m(1), PAGE_SIZE - 1, buf, 0, 2)).toThrow(RangeError);
    expect(() => mem.write(m(1), -1, buf, 0, 1)).toThrow(RangeError);
    expect(() => mem.write(m(1), 0, buf, 1, PAGE_SIZE)).toThrow(RangeError);
    expect(() => mem.read(m(1), 0, buf, PAGE_SIZE, 1)).toThrow(RangeError);
    expect(() => mem.read(m(1), 4000, buf, 0, 200)).toThrow(RangeError);
    expect(() => mem.frameEquals(m(1), new Uint8Array(100))).toThrow(RangeError);
    expect(() => mem.hashPage(new Uint8Array(PAGE_SIZE + 1))).toThrow(RangeError);
    expect(() => mem.setFingerprint(m(1), 2 ** 32, 0)).toThrow(RangeError);
    expect(() => mem.setFingerprint(m(1), 0, 0.5)).toThrow(RangeError);
    const fp = new Fingerprinter();
    expect(() => fp.ofPage(buf, 1)).toThrow(RangeError);
    expect(() => fp.afterWrite(0, 0, 4095, buf, 0, 2)).toThrow(RangeError);
    expect(() => fp.bytes(0, 0, 0, new Uint8Array(10), 0, 11)).toThrow(RangeError);
    // A refused store changes nothing.
    expect(mem.allocatedChunks).toBe(0);
  });
});
