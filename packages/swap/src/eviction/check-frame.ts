import { HypervisorError, invariant } from '@pagevisor/types';

/**
 * Validates the `frames` option of a policy constructor: a positive integer below 2^31, so every
 * mfn fits an Int32Array slot. Throws HypervisorError(EINVAL) otherwise.
 */
export function checkFramesOption(policy: string, frames: number): void {
  if (!Number.isInteger(frames) || frames < 1 || frames > 0x7fffffff) {
    throw new HypervisorError(
      'EINVAL',
      `${policy}_policy`,
      `frames must be an integer in [1, 2^31), got ${frames}`,
    );
  }
}

/**
 * Asserts `mfn` indexes a frame of a policy sized for `frames` frames; an mfn outside the table
 * (INVALID_MFN included) is a caller bug, hence InvariantError.
 */
export function checkMfn(policy: string, op: string, mfn: number, frames: number): void {
  invariant(
    mfn >= 0 && mfn < frames && (mfn | 0) === mfn,
    `${policy}.${op}: mfn ${mfn} outside [0, ${frames})`,
  );
}
