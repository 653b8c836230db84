import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PAGE_SIZE } from '@pagevisor/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import xxhash from 'xxhash-wasm';
import { hashedMemory, pageBuffer, PageHasher } from './page-hash.js';

/** XXH64's low 32 bits, as xxhash-wasm (an independent implementation) computes it. */
async function reference(): Promise<(page: Uint8Array) => number> {
  const { h64Raw } = await xxhash();
  return (page) => Number(BigInt.asUintN(32, h64Raw(page)));
}

describe('the page hash', () => {
  it('is XXH64 (seed 0) folded to its low 32 bits: equal to xxhash-wasm on random pages', async () => {
    const xxh64 = await reference();
    const hasher = new PageHasher();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: PAGE_SIZE, maxLength: PAGE_SIZE }), (page) => {
        expect(hasher.hash(page)).toBe(xxh64(page));
      }),
      { numRuns: 200 },
    );
    // Pages with a single bit set, every 64-bit word and every lane reached.
    for (let bit = 0; bit < PAGE_SIZE * 8; bit += 61) {
      const page = new Uint8Array(PAGE_SIZE);
      page[bit >>> 3] = 1 << (bit & 7);
      expect(hasher.hash(page)).toBe(xxh64(page));
    }
    expect(hasher.hash(new Uint8Array(PAGE_SIZE))).toBe(xxh64(new Uint8Array(PAGE_SIZE)));
  });

  it('reads a page in place at any page offset of its memory, and a page at an offset of a larger buffer', async () => {
    const xxh64 = await reference();
    const { buffer, hash } = hashedMemory(8 * PAGE_SIZE);
    const bytes = new Uint8Array(buffer);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + (i >>> 12)) & 255;
    for (let f = 0; f < 8; f++) expect(hash(f * PAGE_SIZE) >>> 0).toBe(xxh64(bytes.subarray(f * PAGE_SIZE, (f + 1) * PAGE_SIZE)));
    const big = new Uint8Array(3 * PAGE_SIZE).map((_, i) => i % 251);
    expect(new PageHasher().hash(big, PAGE_SIZE + 7)).toBe(xxh64(big.subarray(PAGE_SIZE + 7, 2 * PAGE_SIZE + 7)));
  });

  it('hashes the pages of a pageBuffer where they lie, as it hashes any page', async () => {
    const xxh64 = await reference();
    const hasher = new PageHasher();
    const buf = pageBuffer(3);
    expect(buf.length).toBe(3 * PAGE_SIZE);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 7) & 255;
    const second = buf.subarray(PAGE_SIZE, 2 * PAGE_SIZE);
    expect(hasher.hash(second)).toBe(xxh64(second.slice()));
    expect(hasher.hash(buf, 2 * PAGE_SIZE)).toBe(xxh64(buf.slice(2 * PAGE_SIZE)));
    second[100] ^= 1;
    expect(hasher.hash(second)).toBe(xxh64(second.slice()));
    expect(() => pageBuffer(0)).toThrow(/pages must be an integer in 1\.\.65536, got 0/);
    expect(() => pageBuffer(1.5)).toThrow(RangeError);
  });

  it('rounds memory up to WebAssembly pages and zero-fills it', () => {
    const { buffer } = hashedMemory(PAGE_SIZE);
    expect(buffer.byteLength).toBe(65536);
    expect(new Uint8Array(buffer).every((b) => b === 0)).toBe(true);
  });

  it('runs the module the WAT assembles to (src/xxh64-page-wasm.ts is up to date)', () => {
    // Exits 1, failing the test, when the committed bytes differ from the WAT's.
    const script = fileURLToPath(new URL('../scripts/assemble-wasm.mjs', import.meta.url));
    expect(execFileSync(process.execPath, [script, '--check'], { encoding: 'utf8' })).toBe('');
  });
});
