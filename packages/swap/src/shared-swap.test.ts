import { mkdtempSync, openSync, closeSync, writeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMachineMemory } from '@pagevisor/machine';
import { asSwapSlot, PAGE_SIZE, Prng, type SwapDevice } from '@pagevisor/types';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultPlan } from './fault-plan.js';
import { FileSwapDevice } from './file-swap-device.js';
import { MemorySwapDevice } from './memory-swap-device.js';
import type { Compression } from './page-codec.js';
import { SharedSwap } from './shared-swap.js';
import { errnoOf } from '../tests/helpers.js';

const { hashPage } = await createMachineMemory({ frames: 4 }).then((m) => ({ hashPage: (p: Uint8Array) => m.hashPage(p) }));

function randomPage(seed: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  new Prng(seed).fillBytes(p);
  return p;
}

function textPage(seed: number): Uint8Array {
  const words = ['the', 'guest', 'page', 'swap', 'kernel', 'memory', 'of', 'a', 'domain', '\n'];
  const prng = new Prng(seed);
  const p = new Uint8Array(PAGE_SIZE);
  let i = 0;
  while (i < PAGE_SIZE) {
    const w = words[prng.nextInt(words.length)]! + ' ';
    for (let j = 0; j < w.length && i < PAGE_SIZE; j++) p[i++] = w.charCodeAt(j);
  }
  return p;
}

/** A zero page with 32 random bytes: compresses to a few chunks. */
function sparsePage(seed: number): Uint8Array {
  const prng = new Prng(seed);
  const p = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i < 32; i++) p[prng.nextInt(PAGE_SIZE)] = 1 + (prng.nextU32() % 255);
  return p;
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pagevisor-shared-swap-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const devices: Array<[string, (slots: number, faults?: FaultPlan) => SwapDevice]> = [
  ['memory', (slots, faults) => new MemorySwapDevice({ slots, faults })],
  ['file', (slots, faults) => FileSwapDevice.open({ path: join(dir, 'swap'), slots, faults })],
];
const compressions: Compression[] = ['none', 'deflate', 'lz4'];

describe.each(devices)('SharedSwap on the %s device', (_, makeDevice) => {
  it.each(compressions)('round-trips random, zero and text pages with compression %s', (compression) => {
    const device = makeDevice(8);
    const swap = new SharedSwap({ device, hashPage, compression });
    const pages = [randomPage(1), new Uint8Array(PAGE_SIZE), textPage(2), randomPage(3)];
    const slots = pages.map((p) => swap.store(p, hashPage(p)));
    expect(new Set(slots).size).toBe(4);
    const out = new Uint8Array(PAGE_SIZE);
    pages.forEach((p, i) => {
      swap.load(slots[i]!, out);
      expect(out).toEqual(p);
    });
    const s = swap.stats();
    expect(s.swapOuts).toBe(4);
    expect(s.swapIns).toBe(4);
    expect(s.swapSlotsUsed).toBe(4);
    if (compression === 'none') {
      expect(s.diskBytesUsed).toBe(4 * PAGE_SIZE);
      expect(s.compressionRatio).toBe(1);
    } else {
      // Random pages stay raw; the zero and text pages shrink.
      expect(s.diskBytesUsed).toBeLessThan(3 * PAGE_SIZE);
      expect(s.compressionRatio).toBeGreaterThan(4 / 3);
    }
    // Device space is whole 128-byte chunks: at most one partial chunk per page beyond the bytes written.
    expect(s.diskBytesUsed).toBeGreaterThanOrEqual(s.swapBytesWritten);
    expect(s.diskBytesUsed).toBeLessThan(s.swapBytesWritten + 4 * 128);
    expect(swap.audit()).toEqual([]);
    device.close();
  });

  it('detects a slot corrupted behind the device’s back and names the slot', () => {
    const device = makeDevice(4);
    const swap = new SharedSwap({ device, hashPage });
    swap.store(randomPage(1), hashPage(randomPage(1)));
    const slot = swap.store(randomPage(2), hashPage(randomPage(2)));
    const bad = Uint8Array.of(0x5a);
    if (device instanceof MemorySwapDevice) device.medium()[swap.offsetOf(slot) + 77]! ^= 0xff;
    else {
      const fd = openSync((device as FileSwapDevice).path, 'r+');
      writeSync(fd, bad, 0, 1, swap.offsetOf(slot) + 77);
      closeSync(fd);
    }
    const out = new Uint8Array(PAGE_SIZE).fill(9);
    expect(() => swap.load(slot, out)).toThrow(new RegExp(`EIO: checksum mismatch in slot ${slot}`));
    expect(out.every((b) => b === 9)).toBe(true);
    expect(swap.stats().swapIns).toBe(0);
    expect(swap.audit()).toEqual([]);
    device.close();
  });
});

describe('SharedSwap de-duplication', () => {
  it('shares one refcounted slot between identical pages', () => {
    const swap = new SharedSwap({ device: new MemorySwapDevice({ slots: 4 }), hashPage });
    const p = randomPage(5);
    const a = swap.store(p, hashPage(p));
    const b = swap.store(p.slice(), hashPage(p));
    expect(b).toBe(a);
    expect(swap.refcount(a)).toBe(2);
    const s = swap.stats();
    expect(s.slotsSavedByDedup).toBe(1);
    expect(s.swapSlotsUsed).toBe(1);
    expect(s.swapOuts).toBe(2);
    expect(s.swapBytesWritten).toBe(PAGE_SIZE);
    expect(swap.addRef(a, -1)).toBe(1);
    expect([...swap.usedSlots()]).toEqual([a]);
    expect(swap.addRef(a, -1)).toBe(0);
    expect([...swap.usedSlots()]).toEqual([]);
    expect(swap.audit()).toEqual([]);
    // Once freed the content is gone from the index: a new store writes again.
    swap.store(p, hashPage(p));
    expect(swap.stats().slotsSavedByDedup).toBe(1);
  });

  it('never shares a slot on a hash match alone', () => {
    const weakHash = () => 42;
    const swap = new SharedSwap({ device: new MemorySwapDevice({ slots: 4 }), hashPage: weakHash });
    const pages = [randomPage(1), randomPage(2), randomPage(3)];
    const slots = pages.map((p) => swap.store(p, 42));
    expect(new Set(slots).size).toBe(3);
    expect(swap.store(pages[1]!, 42)).toBe(slots[1]);
    const out = new Uint8Array(PAGE_SIZE);
    pages.forEach((p, i) => {
      swap.load(slots[i]!, out);
      expect(out).toEqual(p);
    });
    expect(swap.stats().slotsSavedByDedup).toBe(1);
    expect(swap.audit()).toEqual([]);
  });

  it('dedup: false is the per-domain baseline: identical pages take a slot each', () => {
    const swap = new SharedSwap({ device: new MemorySwapDevice({ slots: 4 }), hashPage, dedup: false });
    const p = randomPage(5);
    expect(swap.store(p, hashPage(p))).not.toBe(swap.store(p, hashPage(p)));
    expect(swap.name).toBe('per-domain');
    expect(swap.stats().diskBytesUsed).toBe(2 * PAGE_SIZE);
    expect(swap.stats().slotsSavedByDedup).toBe(0);
    expect(swap.audit()).toEqual([]);
  });

  it('keeps the index sound through many frees (tombstone rebuilds)', () => {
    const swap = new SharedSwap({ device: new MemorySwapDevice({ slots: 8 }), hashPage });
    for (let i = 0; i < 200; i++) {
      const p = randomPage(i % 11);
      const s = swap.store(p, hashPage(p));
      if (i % 3 !== 0) swap.addRef(s, -swap.refcount(s));
      expect(swap.audit()).toEqual([]);
    }
  });
});

describe('SharedSwap packed compressed pool', () => {
  it('packs compressed pages into shared device blocks and frees their chunks', () => {
    const device = new MemorySwapDevice({ slots: 2 });
    const swap = new SharedSwap({ device, hashPage, compression: 'lz4', slots: 40 });
    const pages = Array.from({ length: 24 }, (_, i) => sparsePage(100 + i));
    const slots = pages.map((p) => swap.store(p, hashPage(p)));
    // 24 pages would need 24 blocks raw; packed they fit in the device's 2 blocks.
    const blocksTouched = new Set(slots.map((s) => Math.floor(swap.offsetOf(s) / PAGE_SIZE)));
    expect(blocksTouched.size).toBeLessThanOrEqual(2);
    expect(swap.stats().diskBytesUsed).toBeLessThanOrEqual(2 * PAGE_SIZE);
    expect(swap.stats().compressionRatio).toBeGreaterThan(10);
    expect(swap.audit()).toEqual([]);
    const out = new Uint8Array(PAGE_SIZE);
    pages.forEach((p, i) => {
      swap.load(slots[i]!, out);
      expect(out).toEqual(p);
    });
    // A raw page needs a whole free block: none is left.
    const r = randomPage(1);
    expect(() => swap.store(r, hashPage(r))).toThrow(/ENOSPC: no device block has 32 free chunks/);
    expect(swap.audit()).toEqual([]);
    for (const s of slots) swap.addRef(s, -1);
    expect(swap.stats().diskBytesUsed).toBe(0);
    swap.store(r, hashPage(r));
    swap.store(r.map((b) => b ^ 1), hashPage(r.map((b) => b ^ 1)));
    expect(swap.stats().diskBytesUsed).toBe(2 * PAGE_SIZE);
    expect(swap.audit()).toEqual([]);
  });

  it('ENOSPC when the slots run out before the device does', () => {
    const swap = new SharedSwap({ device: new MemorySwapDevice({ slots: 4 }), hashPage, slots: 1 });
    swap.store(randomPage(1), hashPage(randomPage(1)));
    expect(() => swap.store(randomPage(2), hashPage(randomPage(2)))).toThrow(/ENOSPC: all 1 swap slots/);
  });
});

describe('SharedSwap failures change nothing', () => {
  it('ENOSPC when every slot is used; identical content still shares', () => {
    const swap = new SharedSwap({ device: new MemorySwapDevice({ slots: 2 }), hashPage });
    const a = randomPage(1);
    swap.store(a, hashPage(a));
    swap.store(randomPage(2), hashPage(randomPage(2)));
    const before = swap.stats();
    expect(errnoOf(() => swap.store(randomPage(3), hashPage(randomPage(3))))).toBe('ENOSPC');
    expect(swap.stats()).toEqual(before);
    expect(swap.audit()).toEqual([]);
    swap.store(a, hashPage(a));
    expect(swap.stats().slotsSavedByDedup).toBe(1);
  });

  it.each([
    ['EIO write', { failWriteAt: [2] }, 'EIO'],
    ['short write', { shortWriteAt: [2] }, 'EIO'],
    ['full device', { fullAfterWrites: 1 }, 'ENOSPC'],
  ] as const)('%s: the slot is not referenced, the area is unchanged, and it works once cleared', (_, plan, errno) => {
    for (const [, makeDevice] of devices) {
      const faults = new FaultPlan(plan);
      const device = makeDevice(4, faults);
      const swap = new SharedSwap({ device, hashPage });
      const a = randomPage(1);
      const sa = swap.store(a, hashPage(a));
      const before = swap.stats();
      const b = randomPage(2);
      expect(() => swap.store(b, hashPage(b))).toThrow(new RegExp(`${errno}: slot 1`));
      expect(swap.stats()).toEqual(before);
      expect([...swap.usedSlots()]).toEqual([sa]);
      expect(swap.audit()).toEqual([]);
      faults.clear();
      const sb = swap.store(b, hashPage(b));
      const out = new Uint8Array(PAGE_SIZE);
      swap.load(sb, out);
      expect(out).toEqual(b);
      swap.load(sa, out);
      expect(out).toEqual(a);
      expect(swap.audit()).toEqual([]);
      device.close();
    }
  });

  it('EIO on read: load fails naming the slot, the destination and the slot are untouched', () => {
    const faults = new FaultPlan({ failReadAt: [1] });
    const swap = new SharedSwap({ device: new MemorySwapDevice({ slots: 2, faults }), hashPage, compression: 'lz4' });
    const p = textPage(3);
    const s = swap.store(p, hashPage(p));
    const out = new Uint8Array(PAGE_SIZE).fill(1);
    expect(() => swap.load(s, out)).toThrow(new RegExp(`swap_load: EIO: slot ${s}`));
    expect(out.every((b) => b === 1)).toBe(true);
    expect(swap.refcount(s)).toBe(1);
    swap.load(s, out);
    expect(out).toEqual(p);
  });

  it('an unreadable dedup candidate is not shared: the page gets its own slot', () => {
    const faults = new FaultPlan({ failReadAt: [1] });
    const swap = new SharedSwap({ device: new MemorySwapDevice({ slots: 2, faults }), hashPage });
    const p = randomPage(4);
    const a = swap.store(p, hashPage(p));
    const b = swap.store(p, hashPage(p));
    expect(b).not.toBe(a);
    expect(swap.audit()).toEqual([]);
  });

  it('rejects free or out-of-range slots and bad refcount changes', () => {
    const swap = new SharedSwap({ device: new MemorySwapDevice({ slots: 2 }), hashPage });
    const out = new Uint8Array(PAGE_SIZE);
    expect(errnoOf(() => swap.load(asSwapSlot(0), out))).toBe('EINVAL');
    expect(errnoOf(() => swap.load(asSwapSlot(5), out))).toBe('EINVAL');
    const s = swap.store(randomPage(1), hashPage(randomPage(1)));
    expect(errnoOf(() => swap.addRef(s, -2))).toBe('EINVAL');
    expect(errnoOf(() => swap.addRef(s, 0.5))).toBe('EINVAL');
    expect(errnoOf(() => swap.store(new Uint8Array(10), 0))).toBe('EINVAL');
    expect(swap.refcount(s)).toBe(1);
    expect(swap.refcount(asSwapSlot(-1))).toBe(0);
    expect(swap.metadataBytes()).toBeGreaterThan(0);
  });
});
