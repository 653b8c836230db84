import { createMachineMemory } from '@pagevisor/machine';
import { measurement, withLimit, type Measurement } from '../measurement.js';
import type { SuiteContext, SuiteResult } from '../suite-context.js';
import { benchSwap } from '../swap-bench.js';
import { LIMIT } from './limits.js';

/**
 * The swap package: swap out and in per device (memory, file) and compression (none, lz4,
 * deflate), through `SharedSwap`, with ratios to the copy+hash and copy limits (memory device)
 * or to the file slot write and read limits (file device).
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
  return {
    suite: 'swap',
    measurements: out,
    notes: [
      `${pages} distinct pages (half random, half zeros) stored into a fresh shared swap area and loaded back, per repeat and configuration; swap out includes the caller's xxhash of the page. The file device is a temporary file, never fsynced: page-cache figures.`,
    ],
  };
}
