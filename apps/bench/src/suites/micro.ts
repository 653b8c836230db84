import type { Measurement } from '../measurement.js';
import type { SuiteContext, SuiteResult } from '../suite-context.js';
import { benchAbi } from './micro-abi.js';
import { benchDedup } from './micro-dedup.js';
import { benchFrameAllocator } from './micro-frame-allocator.js';
import { benchHypervisor } from './micro-hypervisor.js';
import { benchP2m } from './micro-p2m.js';

/**
 * Every package's hot operations: frame-allocator, p2m, dedup (inline index, KSM, ESX), the
 * hypervisor's page paths (which take cow's faults) and the hypercall ABI. The swap package has
 * a suite of its own (`swap`), machine's primitives are the limits.
 */
export async function runMicro(ctx: SuiteContext): Promise<SuiteResult> {
  const parts: { measurements: Measurement[]; notes: string[] }[] = [];
  parts.push(benchFrameAllocator(ctx));
  parts.push(benchP2m(ctx));
  parts.push(await benchDedup(ctx));
  parts.push(await benchHypervisor(ctx));
  parts.push(benchAbi(ctx));
  return {
    suite: 'micro',
    measurements: parts.flatMap((p) => p.measurements),
    notes: parts.flatMap((p) => p.notes),
  };
}
