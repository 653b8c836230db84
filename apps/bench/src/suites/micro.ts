import type { Measurement } from '../measurement.js';
import type { SuiteContext, SuiteResult } from '../suite-context.js';
import { benchAbi, benchAbiDispatch } from './micro-abi.js';
import { benchDedup } from './micro-dedup.js';
import { benchFrameAllocator } from './micro-frame-allocator.js';
import { benchHypervisor } from './micro-hypervisor.js';
import { benchP2m } from './micro-p2m.js';
import { benchTimelineSample } from './micro-timeline.js';
import { NATIVE_LIMIT } from './limits.js';

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
  parts.push(await benchTimelineSample(ctx));
  parts.push(benchAbi(ctx));
  parts.push(await benchAbiDispatch(ctx));
  return {
    suite: 'micro',
    measurements: parts.flatMap((p) => p.measurements),
    notes: [...parts.flatMap((p) => p.notes), boundsNote(ctx)],
  };
}

/**
 * Which bound the ratios are to: each hot path's figure shows its ratio to the JavaScript bound
 * (this process's MachineMemory primitives, or a loop timed beside it) and to the native one (the
 * C reference's loop of the same work); without the C reference, why there is no native ratio.
 */
export function boundsNote(ctx: Pick<SuiteContext, 'limits' | 'nativeUnavailable'>): string {
  const js = 'ratios: first to the JavaScript bound (the limits suite\'s machine rows, measured in the same process, or a loop timed beside the figure: "(paired)"), then to the native bound (the C reference\'s loop of the same work, "native ...", in the same process)';
  if (ctx.limits.has(NATIVE_LIMIT.copy)) return `${js}.`;
  const why = ctx.nativeUnavailable ?? (ctx.limits.size === 0 ? 'the limits suite did not run' : 'the limits suite has no native rows');
  return `${js}; no native ratios in this run: the C reference was not measured (${why}).`;
}
