import { describe, expect, it } from 'vitest';
import { PAGE_SIZE, Prng } from '@pagevisor/types';
import { fillImagePage, PAGE_WORDS } from '../page-content.js';
import { FINGERPRINT_PAGE_MARK, fillFingerprintPage } from './fingerprint-page.js';

function page(lo: number, hi: number): Uint32Array {
  const p = new Uint32Array(PAGE_WORDS).fill(0xdeadbeef);
  fillFingerprintPage(p, lo, hi);
  return p;
}

const equal = (a: Uint32Array, b: Uint32Array): boolean => a.every((w, i) => w === b[i]);

describe('fillFingerprintPage', () => {
  it('gives the zero page for fingerprint 0, overwriting every word', () => {
    expect(page(0, 0).every((w) => w === 0)).toBe(true);
  });

  it('gives equal pages for equal fingerprints, whatever the buffer held', () => {
    const a = new Uint32Array(PAGE_WORDS);
    const b = new Uint32Array(PAGE_WORDS);
    new Prng(9).fillU32(b);
    fillFingerprintPage(a, 0x1234, 0xabcdef01);
    fillFingerprintPage(b, 0x1234, 0xabcdef01);
    expect(equal(a, b)).toBe(true);
    expect(a[0]).toBe(FINGERPRINT_PAGE_MARK);
    expect([a[1], a[2]]).toEqual([0x1234, 0xabcdef01]);
  });

  it('gives different, non-zero pages for different fingerprints, including neighbours and the extremes', () => {
    const fps: [number, number][] = [[1, 0], [0, 1], [2, 0], [1, 1], [0xffff_ffff, 0], [0, 0xffff_ffff], [0xffff_ffff, 0xffff_ffff], [0x8000_0000, 0x8000_0000]];
    const prng = new Prng(5);
    for (let i = 0; i < 200; i++) fps.push([prng.nextU32(), prng.nextU32()]);
    const seen = new Map<string, [number, number]>();
    for (const [lo, hi] of fps) {
      const p = page(lo, hi);
      expect(p.some((w) => w !== 0)).toBe(true);
      const key = Buffer.from(p.buffer).toString('base64');
      expect(seen.get(key), `fingerprint ${lo}, ${hi}`).toBeUndefined();
      seen.set(key, [lo, hi]);
    }
    expect(seen.size).toBe(fps.length);
  });

  it('fills random-looking content beyond the stamped words', () => {
    const a = page(7, 0);
    const b = page(8, 0);
    let same = 0;
    for (let i = 3; i < PAGE_WORDS; i++) if (a[i] === b[i]) same++;
    expect(same).toBeLessThan(4);
    const image = new Uint32Array(PAGE_WORDS);
    fillImagePage(image, 'none', 7);
    expect(equal(a, image)).toBe(false);
    expect(new Set(new Uint8Array(a.buffer, 0, PAGE_SIZE)).size).toBeGreaterThan(200);
  });
});
