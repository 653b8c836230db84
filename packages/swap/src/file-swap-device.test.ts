import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HypervisorError, PAGE_SIZE } from '@pagevisor/types';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultPlan } from './fault-plan.js';
import { FileSwapDevice } from './file-swap-device.js';
import { page } from '../tests/helpers.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pagevisor-swap-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('FileSwapDevice', () => {
  it('creates a file of slots × 4 KiB and reads back positioned writes', () => {
    const path = join(dir, 'swap');
    const dev = FileSwapDevice.open({ path, slots: 8 });
    expect(statSync(path).size).toBe(8 * PAGE_SIZE);
    dev.write(5 * PAGE_SIZE, page(5), 0, PAGE_SIZE);
    dev.write(1 * PAGE_SIZE + 100, page(1), 10, 50);
    const out = new Uint8Array(PAGE_SIZE);
    dev.read(5 * PAGE_SIZE, out, 0, PAGE_SIZE);
    expect(out).toEqual(page(5));
    const small = new Uint8Array(50);
    dev.read(PAGE_SIZE + 100, small, 0, 50);
    expect(small).toEqual(page(1).subarray(10, 60));
    dev.sync();
    dev.close();
    expect(readFileSync(path).subarray(5 * PAGE_SIZE, 6 * PAGE_SIZE)).toEqual(Buffer.from(page(5)));
  });

  it.each([
    ['never', 0],
    ['always', 6],
    [{ everyWrites: 4 }, 1],
    [{ everyWrites: 2 }, 3],
  ] as const)('fsync policy %j calls fsync %i times for 6 writes', (fsync, calls) => {
    const dev = FileSwapDevice.open({ path: join(dir, 'swap'), slots: 6, fsync });
    for (let i = 0; i < 6; i++) dev.write(i * PAGE_SIZE, page(i), 0, PAGE_SIZE);
    expect(dev.fsyncCount).toBe(calls);
    dev.sync();
    expect(dev.fsyncCount).toBe(calls + 1);
    dev.close();
  });

  it('injects faults through the same plan as the memory device', () => {
    const faults = new FaultPlan({ failWriteAt: [1], shortWriteAt: [2], failReadAt: [1] });
    const dev = FileSwapDevice.open({ path: join(dir, 'swap'), slots: 2, faults });
    expect(() => dev.write(0, page(1), 0, PAGE_SIZE)).toThrow(/EIO/);
    expect(() => dev.write(0, page(1), 0, PAGE_SIZE)).toThrow(/short write/);
    const out = new Uint8Array(PAGE_SIZE).fill(3);
    expect(() => dev.read(0, out, 0, PAGE_SIZE)).toThrow(HypervisorError);
    expect(out.every((b) => b === 3)).toBe(true);
    dev.read(0, out, 0, PAGE_SIZE);
    // The short write left a prefix of the page on the file and zeros after it.
    expect(out[0]).toBe(page(1)[0]);
    expect(out).not.toEqual(page(1));
    dev.close();
  });

  it('refuses I/O once closed and closes only once', () => {
    const dev = FileSwapDevice.open({ path: join(dir, 'swap'), slots: 1 });
    dev.close();
    dev.close();
    expect(() => dev.write(0, page(1), 0, PAGE_SIZE)).toThrow(/closed/);
  });
});
