import { describe, expect, it } from 'vitest';
import { Prng } from '@pagevisor/types';
import { fillImagePage, fillPrivatePage, fillSeededPage, imageSeed, PAGE_WORDS } from './page-content.js';

function imagePage(id: string | number, index: number): Uint32Array {
  const page = new Uint32Array(PAGE_WORDS);
  fillImagePage(page, id, index);
  return page;
}

describe('image pages', () => {
  it('depend only on the image id and page index', () => {
    expect(imagePage('debian-12', 7)).toEqual(imagePage('debian-12', 7));
    expect(imagePage('debian-12', 7)).not.toEqual(imagePage('debian-12', 8));
    expect(imagePage('debian-12', 7)).not.toEqual(imagePage('alpine-3', 7));
  });

  it('accept a precomputed seed for a string id', () => {
    expect(imagePage(imageSeed('debian-12'), 3)).toEqual(imagePage('debian-12', 3));
    expect(imageSeed(12345)).toBe(12345);
    expect(imageSeed(-1)).toBe(0xffffffff);
    expect(imageSeed('a')).not.toBe(imageSeed('b'));
  });

  it('look random: adjacent indices and ids share almost no words, bytes are spread evenly', () => {
    const a = imagePage('os', 0);
    const b = imagePage('os', 1);
    const c = imagePage('os2', 0);
    const same = (p: Uint32Array, q: Uint32Array): number => p.filter((w, i) => w === q[i]).length;
    expect(same(a, b)).toBeLessThan(2);
    expect(same(a, c)).toBeLessThan(2);
    const counts = new Uint32Array(256);
    for (let i = 0; i < 64; i++) for (const byte of new Uint8Array(imagePage('os', i).buffer)) counts[byte]!++;
    // 64 pages = 262144 bytes, 1024 expected per value.
    expect(Math.min(...counts)).toBeGreaterThan(850);
    expect(Math.max(...counts)).toBeLessThan(1200);
  });

  it('overwrite every word and are not zero', () => {
    const page = new Uint32Array(PAGE_WORDS).fill(0xdeadbeef);
    fillImagePage(page, 'x', 0);
    expect(page.filter((w) => w === 0xdeadbeef).length).toBe(0);
    expect(page.some((w) => w !== 0)).toBe(true);
  });
});

describe('private pages', () => {
  it('follow the guest prng: equal seeds, equal pages; successive pages differ', () => {
    const a = new Prng(9);
    const b = new Prng(9);
    const pa = new Uint32Array(PAGE_WORDS);
    const pb = new Uint32Array(PAGE_WORDS);
    fillPrivatePage(pa, a);
    fillPrivatePage(pb, b);
    expect(pa).toEqual(pb);
    const first = pa.slice();
    fillPrivatePage(pa, a);
    expect(pa).not.toEqual(first);
  });
});

describe('seeded step pages', () => {
  const page = (seed: number, index: number): Uint32Array => {
    const p = new Uint32Array(PAGE_WORDS);
    fillSeededPage(p, seed, index);
    return p;
  };

  it('depend on the seed and index only, and differ from image pages of the same numbers', () => {
    expect(page(5, 3)).toEqual(page(5, 3));
    expect(page(5, 3)).not.toEqual(page(5, 4));
    expect(page(5, 3)).not.toEqual(page(6, 3));
    expect(page(5, 3)).not.toEqual(imagePage(5, 3));
    expect(page(5, 0).some((w) => w !== 0)).toBe(true);
  });
});
