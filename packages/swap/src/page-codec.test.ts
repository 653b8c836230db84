import { PAGE_SIZE, Prng } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { CODEC_BOUND, createPageCodec } from './page-codec.js';

function pages(): Uint8Array[] {
  const random = new Uint8Array(PAGE_SIZE);
  new Prng(1).fillBytes(random);
  const sparse = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i += 97) sparse[i] = i & 0xff;
  const text = new TextEncoder().encode('pagevisor swaps guest pages to one shared area. '.repeat(100)).subarray(0, PAGE_SIZE);
  return [random, new Uint8Array(PAGE_SIZE), sparse, text];
}

describe.each(['deflate', 'lz4'] as const)('%s codec', (name) => {
  it('round-trips every kind of page and shrinks the compressible ones', () => {
    const codec = createPageCodec(name)!;
    expect(codec.name).toBe(name);
    const buf = new Uint8Array(CODEC_BOUND);
    const out = new Uint8Array(PAGE_SIZE);
    const [random, ...compressible] = pages();
    expect(codec.compress(random!, buf)).toBeGreaterThanOrEqual(PAGE_SIZE);
    for (const p of compressible) {
      const n = codec.compress(p, buf);
      expect(n).toBeLessThan(PAGE_SIZE / 2);
      out.fill(0xaa);
      expect(codec.decompress(buf, n, out)).toBe(PAGE_SIZE);
      expect(out).toEqual(p);
    }
  });
});

describe('createPageCodec', () => {
  it('gives no codec for none', () => {
    expect(createPageCodec('none')).toBeUndefined();
  });
});
