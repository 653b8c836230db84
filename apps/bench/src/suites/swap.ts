import { createMachineMemory } from '@pagevisor/machine';
import { measurement, median, withLimit, type Measurement } from '../measurement.js';
import type { SuiteContext, SuiteResult } from '../suite-context.js';
import { benchSwap } from '../swap-bench.js';
import { benchSwapIn } from '../swap-in-bench.js';
import { LIMIT } from './limits.js';

/** Ids of the swap-in measurements (the targets read the de-duplicated hit's ratio to the plain swap-in). */
export const SWAP_IN_ID = {
  plain: 'swap.swap-in.plain',
  deduped: 'swap.swap-in.deduped',
  cached: 'swap.swap-in.cached',
} as const;

/** Pages per domain of the swap-in benchmark. */
export function swapInPages(quick: boolean): number {
  return quick ? 1024 : 16384;
}

/**
 * The swap package: swap out and in per device (memory, file) and compression (none, lz4,
 * deflate), through `SharedSwap`, with ratios to the copy+hash and copy limits (memory device)
 * or to the file slot write and read limits (file device). Then the hypervisor's swap-in paths
 * side by side (see `benchSwapIn`): a plain swap-in, one whose content the inline index finds
 * resident in another domain's frame, and one from the swap cache, each with its ratio to the
 * plain swap-in timed beside it (the median of the per-repeat ratios).
 */
export async function runSwap(ctx: SuiteContext): Promise<SuiteResult> {
  const pages = ctx.quick ? 1024 : 16384;
  ctx.log(`swap: ${pages} pages per configuration`);
  const memory = await createMachineMemory({ frames: 1 });
  const bench = benchSwap(memory, pages, ctx.repeats);
  const out: Measurement[] = [];
  const ratioTo = (m: Measurement, limitId: string, name: string): Measurement => {
    const limit = ctx.limits.get(limitId);
    return limit === undefined ? m : withLimit(m, limit, name);
  };
  for (const c of bench.configs) {
    const group = `${c.device}-${c.compression}`;
    const mem = c.device === 'memory';
    out.push(
      ratioTo(
        measurement({ suite: 'swap', group, key: 'out', name: `${c.device}, ${c.compression}: swap out`, unit: 'pages/s', better: 'higher', samples: c.swapOutPagesPerS }),
        mem ? LIMIT.copyHash : LIMIT.fileWrite,
        mem ? 'copy+hash' : 'file write',
      ),
      ratioTo(
        measurement({ suite: 'swap', group, key: 'in', name: `${c.device}, ${c.compression}: swap in`, unit: 'pages/s', better: 'higher', samples: c.swapInPagesPerS }),
        mem ? LIMIT.copy : LIMIT.fileRead,
        mem ? 'copy' : 'file read',
      ),
      measurement({ suite: 'swap', group, key: 'compression-ratio', name: `${c.device}, ${c.compression}: compression ratio`, unit: 'x', better: 'higher', samples: [c.compressionRatio], exact: true }),
    );
  }
  const inPages = swapInPages(ctx.quick);
  ctx.log(`swap: swap-in paths, ${inPages} pages per domain`);
  const swapIn = await benchSwapIn(inPages, ctx.repeats, ctx.quick ? { minSampleMs: 5, maxRounds: 4 } : { minSampleMs: 100 });
  const fault = (key: 'plain' | 'deduped' | 'cached', name: string): Measurement =>
    measurement({ suite: 'swap', group: 'swap-in', key, name, unit: 'faults/s', better: 'higher', samples: swapIn.faultsPerS[key] });
  const plain = fault('plain', 'swap-in fault, plain (new frame, slot read, index insert)');
  const paired = (m: Measurement, ratios: readonly number[]): Measurement => ({ ...m, limit: { id: plain.id, name: 'plain swap-in (paired)', ratio: median(ratios) } });
  out.push(
    plain,
    paired(fault('deduped', 'swap-in fault, de-duplicated hit (slot read, index hit, compare, map shared)'), swapIn.ratios.deduped),
    paired(fault('cached', 'swap-in fault, swap-cache hit (map the frame caching the slot)'), swapIn.ratios.cached),
  );
  return {
    suite: 'swap',
    measurements: out,
    notes: [
      `${pages} distinct pages (half random, half zeros) stored into a fresh shared swap area and loaded back, per repeat and configuration; swap out includes the caller's hash of the page. The file device is a temporary file, never fsynced: page-cache figures.`,
      `swap-in: one hypervisor (inline dedup, one shared swap area on a memory device, no compression), a reader and a holder domain of ${inPages} pages per case; the reader's guest loads (readPage) fault its paged-out pages in: plain (the content is nowhere in RAM), de-duplicated (the holder holds it in frames of its own: swapInsDeduped), swap cache (the holder faulted the shared slots in first: swapInsCached). ${swapIn.rounds} round${swapIn.rounds === 1 ? '' : 's'} a sample (every case), each prepared untimed; the cases take turns every 64 faults, and the ratios to plain are medians of per-repeat ratios. Each round checks the counters, and every page read back (${swapIn.pagesVerified} in all) equals what was written; audited after each repeat, ${swapIn.duplicateFrames} duplicate frames at the end.`,
    ],
  };
}
