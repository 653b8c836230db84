import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSwapDevice, MemorySwapDevice, SharedSwap, type Compression } from '@pagevisor/swap';
import { PAGE_SIZE, Prng, type MachineMemory, type SwapDevice } from '@pagevisor/types';
import { throwProblems } from './suite-context.js';

/** Swap devices measured. */
export const SWAP_DEVICES = ['memory', 'file'] as const;
/** Compressions measured. */
export const SWAP_COMPRESSIONS: readonly Compression[] = ['none', 'lz4', 'deflate'];

/** One swap configuration's rates, in pages per second of wall time, one sample per repeat. */
export interface SwapRate {
  readonly device: (typeof SWAP_DEVICES)[number];
  readonly compression: Compression;
  /** Pages stored per second (hash by the caller, slot de-dup check, compression, device write). */
  readonly swapOutPagesPerS: readonly number[];
  /** Pages loaded back per second (device read, decompression). */
  readonly swapInPagesPerS: readonly number[];
  /** Bytes of the pages over bytes on the device. */
  readonly compressionRatio: number;
}

/** The swap figures of one run: every device × compression. */
export interface SwapBench {
  /** Pages stored and loaded per repeat. */
  readonly pages: number;
  /** Repeats (samples) of each rate. */
  readonly repeats: number;
  /** Device × compression, in the order of {@link SWAP_DEVICES} then {@link SWAP_COMPRESSIONS}. */
  readonly configs: readonly SwapRate[];
}

const rate = (pages: number, t0: number): number => pages / ((performance.now() - t0) / 1000);

/**
 * Per repeat and per configuration, stores `pages` distinct pages (half random, half zeros:
 * compressible about 2x, never equal, so the slot de-duplication writes every one) into a fresh
 * shared swap area and loads them all back. The file device is a temporary file, never fsynced
 * (`fsync: 'never'`): its figures are the page cache's. Every area is audited after its run.
 */
export function benchSwap(memory: MachineMemory, pages: number, repeats = 1): SwapBench {
  const page = new Uint8Array(PAGE_SIZE);
  new Prng(3).fillBytes(page.subarray(0, PAGE_SIZE / 2));
  const words = new Uint32Array(page.buffer);
  const out = new Uint8Array(PAGE_SIZE);
  const dir = tmpdir();
  const configs: SwapRate[] = [];
  for (const kind of SWAP_DEVICES) {
    for (const compression of SWAP_COMPRESSIONS) {
      const outRates: number[] = [];
      const inRates: number[] = [];
      let compressionRatio = 0;
      // One untimed pass of a quarter of the pages first, like the other suites' warm-up, so that
      // the JIT and the codec are warm.
      for (let r = -1; r < repeats; r++) {
        const n = r < 0 ? Math.max(64, pages >> 2) : pages;
        const path = join(dir, `pagevisor-bench-swap-${process.pid}`);
        const device: SwapDevice = kind === 'memory' ? new MemorySwapDevice({ slots: n }) : FileSwapDevice.open({ path, slots: n, fsync: 'never' });
        try {
          const swap = new SharedSwap({ device, hashPage: (p) => memory.hashPage(p), compression });
          let t0 = performance.now();
          for (let i = 0; i < n; i++) {
            words[0] = i + 1;
            swap.store(page, memory.hashPage(page));
          }
          const outRate = rate(n, t0);
          t0 = performance.now();
          let loaded = 0;
          for (const slot of swap.usedSlots()) {
            swap.load(slot, out);
            loaded++;
          }
          const inRate = rate(loaded, t0);
          if (loaded !== n) throw new Error(`swap bench: ${loaded} slots in use after storing ${n} distinct pages`);
          throwProblems('swap audit after the benchmark', swap.audit());
          compressionRatio = swap.stats().compressionRatio;
          if (r >= 0) {
            outRates.push(outRate);
            inRates.push(inRate);
          }
        } finally {
          device.close();
          rmSync(path, { force: true });
        }
      }
      configs.push({ device: kind, compression, swapOutPagesPerS: outRates, swapInPagesPerS: inRates, compressionRatio });
    }
  }
  return { pages, repeats, configs };
}
