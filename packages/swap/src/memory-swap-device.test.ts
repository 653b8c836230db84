import { HypervisorError, PAGE_SIZE } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { FaultPlan } from './fault-plan.js';
import { MemorySwapDevice } from './memory-swap-device.js';
import { errnoOf, page } from '../tests/helpers.js';


describe('MemorySwapDevice', () => {
  it('reads back what was written at each slot', () => {
    const dev = new MemorySwapDevice({ slots: 4 });
    const a = page(1);
    const b = page(2);
    dev.write(0, a, 0, PAGE_SIZE);
    dev.write(3 * PAGE_SIZE, b, 0, PAGE_SIZE);
    const out = new Uint8Array(PAGE_SIZE);
    dev.read(3 * PAGE_SIZE, out, 0, PAGE_SIZE);
    expect(out).toEqual(b);
    dev.read(0, out, 0, PAGE_SIZE);
    expect(out).toEqual(a);
    expect(dev.name).toBe('memory');
    expect(dev.slots).toBe(4);
  });

  it('rejects ranges outside the device or the buffer', () => {
    const dev = new MemorySwapDevice({ slots: 1 });
    expect(errnoOf(() => dev.write(PAGE_SIZE - 1, page(1), 0, 2))).toBe('EINVAL');
    expect(errnoOf(() => dev.read(0, new Uint8Array(10), 0, 11))).toBe('EINVAL');
    expect(errnoOf(() => dev.read(-1, new Uint8Array(10), 0, 1))).toBe('EINVAL');
    expect(() => new MemorySwapDevice({ slots: 0 })).toThrow(HypervisorError);
  });

  it('an injected EIO write or ENOSPC writes nothing', () => {
    const dev = new MemorySwapDevice({ slots: 2, faults: new FaultPlan({ failWriteAt: [1], fullAfterWrites: 0 }) });
    expect(errnoOf(() => dev.write(0, page(1), 0, PAGE_SIZE))).toBe('ENOSPC');
    expect(dev.medium().every((b) => b === 0)).toBe(true);
    const dev2 = new MemorySwapDevice({ slots: 2, faults: new FaultPlan({ failWriteAt: [1] }) });
    expect(errnoOf(() => dev2.write(0, page(1), 0, PAGE_SIZE))).toBe('EIO');
    expect(dev2.medium().every((b) => b === 0)).toBe(true);
  });

  it('a short write writes a strict prefix and reports EIO', () => {
    const dev = new MemorySwapDevice({ slots: 1, faults: new FaultPlan({ shortWriteAt: [1] }) });
    const p = page(9);
    expect(errnoOf(() => dev.write(0, p, 0, PAGE_SIZE))).toBe('EIO');
    const m = dev.medium();
    let written = 0;
    while (written < PAGE_SIZE && m[written] === p[written]) written++;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(PAGE_SIZE);
    expect(m.subarray(written + 1).some((b, i) => b !== p[written + 1 + i])).toBe(true);
  });

  it('an injected read EIO leaves the destination untouched, then reads work again once cleared', () => {
    const faults = new FaultPlan({ readErrorProbability: 1 });
    const dev = new MemorySwapDevice({ slots: 1, faults });
    dev.write(0, page(4), 0, PAGE_SIZE);
    const out = new Uint8Array(PAGE_SIZE).fill(7);
    expect(errnoOf(() => dev.read(0, out, 0, PAGE_SIZE))).toBe('EIO');
    expect(out.every((b) => b === 7)).toBe(true);
    faults.clear();
    dev.read(0, out, 0, PAGE_SIZE);
    expect(out).toEqual(page(4));
  });

  it('refuses I/O once closed', () => {
    const dev = new MemorySwapDevice({ slots: 1 });
    dev.close();
    expect(errnoOf(() => dev.read(0, new Uint8Array(PAGE_SIZE), 0, PAGE_SIZE))).toBe('EINVAL');
  });
});
