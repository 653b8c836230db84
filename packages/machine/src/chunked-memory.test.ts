import { describe, expect, it } from 'vitest';
import { asMfn, PAGE_SIZE } from '@pagevisor/types';
import { ChunkedMemory } from './chunked-memory.js';
import { createMachineMemory } from './create-machine-memory.js';
import { ZERO_PAGE } from './zero-page.js';

function page(seed: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i++) p[i] = (i * 31 + seed * 7 + 1) & 0xff;
  return p;
}

function readFrame(mem: ChunkedMemory, mfn: number): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE);
  mem.read(asMfn(mfn), 0, out, 0, PAGE_SIZE);
  return out;
}

describe('ChunkedMemory', () => {
  it('reads back what was written, at offsets in the frame and in the buffers', async () => {
    const mem = await createMachineMemory({ frames: 64, chunkFrames: 16 });
    const src = Uint8Array.from([9, 1, 2, 3, 4, 5, 9]);
    mem.write(asMfn(5), 100, src, 1, 5);
    const dst = new Uint8Array(10).fill(0xee);
    mem.read(asMfn(5), 99, dst, 2, 7);
    expect([...dst]).toEqual([0xee, 0xee, 0, 1, 2, 3, 4, 5, 0, 0xee]);
    // The last bytes of a frame, not spilling into the next one.
    mem.write(asMfn(5), PAGE_SIZE - 2, src, 0, 2);
    expect([...readFrame(mem, 5).subarray(PAGE_SIZE - 3)]).toEqual([0, 9, 1]);
    expect(mem.isZeroFrame(asMfn(6))).toBe(true);
  });

  it('reads untouched frames as zeros without allocating their chunk', async () => {
    const mem = await createMachineMemory({ frames: 64, chunkFrames: 16 });
    const dst = new Uint8Array(PAGE_SIZE).fill(0xaa);
    mem.read(asMfn(40), 0, dst, 0, PAGE_SIZE);
    expect(dst.every((b) => b === 0)).toBe(true);
    expect(mem.isZeroFrame(asMfn(40))).toBe(true);
    mem.zeroFrame(asMfn(40));
    expect(mem.allocatedChunks).toBe(0);
    mem.write(asMfn(40), 0, Uint8Array.of(1), 0, 1);
    expect(mem.allocatedChunks).toBe(1);
    expect(mem.allocatedBytes).toBe(16 * PAGE_SIZE);
  });

  it('sizes the last chunk to the frames left', async () => {
    const mem = await createMachineMemory({ frames: 20, chunkFrames: 16 });
    expect(mem.chunkCount).toBe(2);
    mem.write(asMfn(19), 0, page(1), 0, PAGE_SIZE);
    expect(mem.allocatedBytes).toBe(4 * PAGE_SIZE);
    expect(readFrame(mem, 19)).toEqual(page(1));
  });

  it('copies frames within and across chunks, including from untouched chunks', async () => {
    const mem = await createMachineMemory({ frames: 64, chunkFrames: 16 });
    mem.write(asMfn(3), 0, page(3), 0, PAGE_SIZE);
    mem.copyFrame(asMfn(4), asMfn(3));
    mem.copyFrame(asMfn(50), asMfn(3));
    expect(readFrame(mem, 4)).toEqual(page(3));
    expect(readFrame(mem, 50)).toEqual(page(3));
    expect(mem.framesEqual(asMfn(3), asMfn(50))).toBe(true);
    // Copying a frame of an untouched chunk zeroes the destination.
    mem.copyFrame(asMfn(4), asMfn(20));
    expect(mem.isZeroFrame(asMfn(4))).toBe(true);
    expect(readFrame(mem, 3)).toEqual(page(3));
  });

  it('compares frames: equal, differing only in the last byte, against untouched chunks', async () => {
    const mem = await createMachineMemory({ frames: 64, chunkFrames: 16 });
    const p = page(7);
    const q = page(7);
    q[PAGE_SIZE - 1] ^= 1;
    mem.write(asMfn(1), 0, p, 0, PAGE_SIZE);
    mem.write(asMfn(17), 0, p, 0, PAGE_SIZE);
    mem.write(asMfn(2), 0, q, 0, PAGE_SIZE);
    expect(mem.framesEqual(asMfn(1), asMfn(17))).toBe(true);
    expect(mem.framesEqual(asMfn(1), asMfn(2))).toBe(false);
    expect(mem.framesEqual(asMfn(1), asMfn(1))).toBe(true);
    expect(mem.frameEquals(asMfn(1), p)).toBe(true);
    expect(mem.frameEquals(asMfn(1), q)).toBe(false);
    expect(mem.frameEquals(asMfn(40), ZERO_PAGE)).toBe(true);
    expect(mem.frameEquals(asMfn(40), p)).toBe(false);
    expect(mem.framesEqual(asMfn(40), asMfn(1))).toBe(false);
    expect(mem.framesEqual(asMfn(1), asMfn(40))).toBe(false);
    expect(mem.framesEqual(asMfn(40), asMfn(3))).toBe(true);
    expect(mem.framesEqual(asMfn(3), asMfn(40))).toBe(true);
  });

  it('orders frames by content like memcmp', async () => {
    const mem = await createMachineMemory({ frames: 64, chunkFrames: 16 });
    const low = new Uint8Array(PAGE_SIZE);
    low[PAGE_SIZE - 1] = 1;
    const high = new Uint8Array(PAGE_SIZE);
    high[0] = 1;
    mem.write(asMfn(1), 0, low, 0, PAGE_SIZE);
    mem.write(asMfn(2), 0, high, 0, PAGE_SIZE);
    mem.write(asMfn(18), 0, high, 0, PAGE_SIZE);
    expect(mem.compareFrames(asMfn(1), asMfn(2))).toBeLessThan(0);
    expect(mem.compareFrames(asMfn(2), asMfn(1))).toBeGreaterThan(0);
    expect(mem.compareFrames(asMfn(2), asMfn(18))).toBe(0);
    // Frame 40 lies in an untouched chunk: zeros sort below both.
    expect(mem.compareFrames(asMfn(40), asMfn(1))).toBeLessThan(0);
    expect(mem.compareFrames(asMfn(2), asMfn(40))).toBeGreaterThan(0);
    expect(mem.compareFrames(asMfn(40), asMfn(41))).toBe(0);
  });

  it('tells zero frames, down to a single non-zero last byte', async () => {
    const mem = await createMachineMemory({ frames: 16, chunkFrames: 16 });
    mem.write(asMfn(0), PAGE_SIZE - 1, Uint8Array.of(1), 0, 1);
    expect(mem.isZeroFrame(asMfn(0))).toBe(false);
    expect(mem.isZeroFrame(asMfn(1))).toBe(true);
    mem.zeroFrame(asMfn(0));
    expect(mem.isZeroFrame(asMfn(0))).toBe(true);
  });

  it('does not trust the exported ZERO_PAGE to stay zero', async () => {
    const mem = await createMachineMemory({ frames: 16 });
    mem.write(asMfn(0), 0, Uint8Array.of(0), 0, 1);
    ZERO_PAGE[0] = 1;
    try {
      expect(mem.isZeroFrame(asMfn(0))).toBe(true);
    } finally {
      ZERO_PAGE[0] = 0;
    }
  });

  it('checksums equal frames alike wherever they are, and tells a change of any one word', async () => {
    const mem = await createMachineMemory({ frames: 64, chunkFrames: 16 });
    const p = page(3);
    mem.write(asMfn(2), 0, p, 0, PAGE_SIZE);
    mem.write(asMfn(40), 0, p, 0, PAGE_SIZE); // another chunk
    const sum = mem.checksumFrame(asMfn(2));
    expect(mem.checksumFrame(asMfn(40))).toBe(sum);
    expect(Number.isInteger(sum) && sum >= 0 && sum <= 0xffffffff).toBe(true);
    // Every word (each of the four lanes, first and last) counts.
    for (const word of [0, 1, 2, 3, 511, 1020, 1021, 1022, 1023]) {
      mem.write(asMfn(40), word * 4, Uint8Array.of(p[word * 4]! ^ 1), 0, 1);
      expect(mem.checksumFrame(asMfn(40)), `word ${word}`).not.toBe(sum);
      mem.write(asMfn(40), word * 4, p, word * 4, 1);
      expect(mem.checksumFrame(asMfn(40))).toBe(sum);
    }
    // Untouched and zeroed frames checksum alike; not as xxhash does.
    mem.zeroFrame(asMfn(2));
    expect(mem.checksumFrame(asMfn(2))).toBe(mem.checksumFrame(asMfn(60)));
    expect(mem.checksumFrame(asMfn(60))).not.toBe(mem.hashFrame(asMfn(60)));
    expect(() => mem.checksumFrame(asMfn(64))).toThrow(RangeError);
  });

  it('hashes a frame and a page with the same bytes alike, and different bytes apart', async () => {
    const mem = await createMachineMemory({ frames: 64, chunkFrames: 16 });
    const p = page(1);
    const q = page(1);
    q[PAGE_SIZE - 1] ^= 0x80;
    mem.write(asMfn(9), 0, p, 0, PAGE_SIZE);
    mem.write(asMfn(33), 0, q, 0, PAGE_SIZE);
    expect(mem.hashFrame(asMfn(9))).toBe(mem.hashPage(p));
    expect(mem.hashFrame(asMfn(33))).toBe(mem.hashPage(q));
    expect(mem.hashFrame(asMfn(9))).not.toBe(mem.hashFrame(asMfn(33)));
    // Untouched, zeroed and ZERO_PAGE all hash alike.
    mem.write(asMfn(10), 5, p, 0, 3);
    mem.zeroFrame(asMfn(10));
    const zeroHash = mem.hashPage(ZERO_PAGE);
    expect(mem.hashFrame(asMfn(10))).toBe(zeroHash);
    expect(mem.hashFrame(asMfn(50))).toBe(zeroHash);
    expect(mem.hashFrame(asMfn(9))).not.toBe(zeroHash);
    expect(Number.isInteger(zeroHash) && zeroHash >= 0 && zeroHash <= 0xffffffff).toBe(true);
    // A second machine hashes with the same function.
    const other = await createMachineMemory({ frames: 1 });
    other.write(asMfn(0), 0, p, 0, PAGE_SIZE);
    expect(other.hashFrame(asMfn(0))).toBe(mem.hashFrame(asMfn(9)));
  });

  it('handles more than 4 GiB, allocating only the chunks touched', async () => {
    const frames = 1_310_720; // 5 GiB
    const mem = await createMachineMemory({ frames, chunkFrames: 1024 });
    const fourGiB = 1 << 20; // first frame above 4 GiB
    const probes = [fourGiB - 1, fourGiB, fourGiB + 1, frames - 1];
    probes.forEach((mfn, i) => mem.write(asMfn(mfn), 0, page(i + 1), 0, PAGE_SIZE));
    probes.forEach((mfn, i) => {
      expect(readFrame(mem, mfn)).toEqual(page(i + 1));
      expect(mem.hashFrame(asMfn(mfn))).toBe(mem.hashPage(page(i + 1)));
      expect(mem.frameEquals(asMfn(mfn), page(i + 1))).toBe(true);
    });
    // Frames aliasing the probes modulo 2^32 bytes stay untouched.
    expect(mem.isZeroFrame(asMfn(0))).toBe(true);
    expect(mem.isZeroFrame(asMfn(1))).toBe(true);
    mem.copyFrame(asMfn(fourGiB + 2), asMfn(fourGiB - 1));
    expect(mem.framesEqual(asMfn(fourGiB + 2), asMfn(fourGiB - 1))).toBe(true);
    expect(mem.framesEqual(asMfn(fourGiB), asMfn(fourGiB - 1))).toBe(false);
    expect(mem.allocatedChunks).toBe(3);
    expect(mem.allocatedBytes).toBe(3 * 1024 * PAGE_SIZE);
  });

  it('rejects out-of-range frames, offsets, lengths and buffers with RangeError', async () => {
    const mem = await createMachineMemory({ frames: 8 });
    const buf = new Uint8Array(PAGE_SIZE);
    expect(() => mem.read(asMfn(8), 0, buf, 0, 1)).toThrow(/mfn 8 outside machine RAM of 8 frames/);
    expect(() => mem.read(asMfn(-1), 0, buf, 0, 1)).toThrow(RangeError);
    expect(() => mem.read(asMfn(1.5), 0, buf, 0, 1)).toThrow(RangeError);
    expect(() => mem.read(asMfn(Number.NaN), 0, buf, 0, 1)).toThrow(RangeError);
    expect(() => mem.read(asMfn(0), PAGE_SIZE - 1, buf, 0, 2)).toThrow(/byte range 4095\+2 outside a frame/);
    expect(() => mem.read(asMfn(0), -1, buf, 0, 1)).toThrow(RangeError);
    expect(() => mem.read(asMfn(0), 0, buf, 0, -1)).toThrow(RangeError);
    expect(() => mem.read(asMfn(0), 0, buf, 1, PAGE_SIZE)).toThrow(/dst range/);
    expect(() => mem.write(asMfn(0), 0, buf, PAGE_SIZE, 1)).toThrow(/src range/);
    expect(() => mem.write(asMfn(0), 0, buf, -1, 1)).toThrow(RangeError);
    expect(() => mem.write(asMfn(9), 0, buf, 0, 1)).toThrow(RangeError);
    expect(() => mem.copyFrame(asMfn(0), asMfn(8))).toThrow(RangeError);
    expect(() => mem.copyFrame(asMfn(8), asMfn(0))).toThrow(RangeError);
    expect(() => mem.zeroFrame(asMfn(8))).toThrow(RangeError);
    expect(() => mem.isZeroFrame(asMfn(8))).toThrow(RangeError);
    expect(() => mem.framesEqual(asMfn(0), asMfn(8))).toThrow(RangeError);
    expect(() => mem.hashFrame(asMfn(8))).toThrow(RangeError);
    expect(() => mem.frameEquals(asMfn(0), new Uint8Array(PAGE_SIZE - 1))).toThrow(/exactly 4096 bytes/);
    expect(() => mem.hashPage(new Uint8Array(PAGE_SIZE + 1))).toThrow(/exactly 4096 bytes/);
    // Refused writes changed nothing.
    expect(mem.allocatedChunks).toBe(0);
    // A zero-length access at the end of a frame is fine.
    mem.read(asMfn(7), PAGE_SIZE, buf, PAGE_SIZE, 0);
  });

  it('rejects bad machine shapes', async () => {
    await expect(createMachineMemory({ frames: 0 })).rejects.toThrow(RangeError);
    await expect(createMachineMemory({ frames: 2.5 })).rejects.toThrow(RangeError);
    await expect(createMachineMemory({ frames: 2 ** 31 })).rejects.toThrow(RangeError);
    await expect(createMachineMemory({ frames: 8, chunkFrames: 3 })).rejects.toThrow(/power of two/);
    await expect(createMachineMemory({ frames: 8, chunkFrames: 1 << 19 })).rejects.toThrow(RangeError);
    await expect(createMachineMemory({ frames: 8, chunkFrames: 0 })).rejects.toThrow(RangeError);
    const mem = await createMachineMemory({ frames: 3 * 65536 + 1 });
    expect(mem.chunkFrames).toBe(65536);
    expect(mem.chunkCount).toBe(4);
  });
});
