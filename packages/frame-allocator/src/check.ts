import { HypervisorError, MAX_ORDER } from '@pagevisor/types';

/** Throws RangeError unless `mfn` is an integer frame number below `totalFrames`. */
export function checkMfn(mfn: number, totalFrames: number, op: string): void {
  // `>>> 0` rejects negatives, fractions and NaN in one compare; totalFrames < 2^31.
  if (!(mfn >>> 0 === mfn && mfn < totalFrames)) {
    throw new RangeError(`${op}: mfn ${mfn} outside the ${totalFrames} frames of the machine`);
  }
}

/** Throws HypervisorError EINVAL unless `order` is an integer in 0..MAX_ORDER (a refused allocation). */
export function checkAllocOrder(order: number): void {
  if (!(order >>> 0 === order && order <= MAX_ORDER)) {
    throw new HypervisorError('EINVAL', 'alloc', `order ${order} is not an integer in 0..${MAX_ORDER}`);
  }
}

/** Throws RangeError unless `totalFrames` is a machine size an allocator can manage. */
export function checkTotalFrames(totalFrames: number): void {
  if (!(Number.isInteger(totalFrames) && totalFrames >= 1 && totalFrames <= 0x7fffffff)) {
    throw new RangeError(`totalFrames must be an integer in 1..${0x7fffffff}, got ${totalFrames}`);
  }
}
