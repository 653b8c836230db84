import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSwapDevice, MemorySwapDevice, SharedSwap, type Compression } from '@pagevisor/swap';
import { PAGE_SIZE, Prng, type MachineMemory, type SwapDevice } from '@pagevisor/types';

/** One swap configuration's rates, in pages per second of wall time. */
export interface SwapRate {
  readonly device: string;
  readonly compression: Compression;
  readonly swapOutPagesPerS: number;
  readonly swapInPagesPerS: number;
  readonly compressionRatio: number;
}

/** The swap figures of one run: raw 4 KiB slot file I/O beside every device × compression. */
export interface SwapBench {
  readonly pages: number;
  readonly rawFileWritePagesPerS: number;
  readonly rawFileReadPagesPerS: number;
  readonly configs: readonly SwapRate[];
}

const rate = (pages: number, t0: number): number => pages / ((performance.now() - t0) / 1000);

/**
 * Stores `pages` distinct pages (half random, half zeros: compressible about 2x, never equal, so
 * de-duplication writes every one) into each swap configuration and loads them back, and times
 * the same number of raw positioned 4 KiB writes and reads of a file.
 */
export function benchSwap(memory: MachineMemory, pages: number): SwapBench {
  const page = new Uint8Array(PAGE_SIZE);
  new Prng(3).fillBytes(page.subarray(0, PAGE_SIZE / 2));
  const words = new Uint32Array(page.buffer);
  const out = new Uint8Array(PAGE_SIZE);
  const dir = tmpdir();

  const rawPath = join(dir, `pagevisor-bench-raw-${process.pid}`);
  const fd = openSync(rawPath, 'w+');
  let t0 = performance.now();
  for (let i = 0; i < pages; i++) {
    words[0] = i;
    writeSync(fd, page, 0, PAGE_SIZE, i * PAGE_SIZE);
  }
  const rawFileWritePagesPerS = rate(pages, t0);
  t0 = performance.now();
  for (let i = 0; i < pages; i++) readSync(fd, out, 0, PAGE_SIZE, i * PAGE_SIZE);
  const rawFileReadPagesPerS = rate(pages, t0);
  closeSync(fd);
  rmSync(rawPath, { force: true });

  const configs: SwapRate[] = [];
  for (const kind of ['memory', 'file'] as const) {
    for (const compression of ['none', 'deflate', 'lz4'] as const) {
      const path = join(dir, `pagevisor-bench-swap-${process.pid}`);
      const device: SwapDevice = kind === 'memory' ? new MemorySwapDevice({ slots: pages }) : FileSwapDevice.open({ path, slots: pages, fsync: 'never' });
      const swap = new SharedSwap({ device, hashPage: (p) => memory.hashPage(p), compression });
      t0 = performance.now();
      for (let i = 0; i < pages; i++) {
        words[0] = i + 1;
        swap.store(page, memory.hashPage(page));
      }
      const swapOutPagesPerS = rate(pages, t0);
      t0 = performance.now();
      for (const slot of swap.usedSlots()) swap.load(slot, out);
      const swapInPagesPerS = rate(pages, t0);
      const problems = swap.audit();
      if (problems.length > 0) throw new Error(`swap audit after the benchmark: ${problems.join('; ')}`);
      configs.push({ device: kind, compression, swapOutPagesPerS, swapInPagesPerS, compressionRatio: swap.stats().compressionRatio });
      device.close();
      rmSync(path, { force: true });
    }
  }
  return { pages, rawFileWritePagesPerS, rawFileReadPagesPerS, configs };
}
