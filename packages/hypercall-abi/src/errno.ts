import { Errno, errnoName, HypervisorError, invariant, type ErrnoName } from '@pagevisor/types';
import type { HypercallResponse } from './response-codec.js';

/** Detail of a HypervisorError rebuilt from a response that carried no message. */
export const NO_MESSAGE = '(no message from the hypervisor)';

/**
 * The HypervisorError for a failed hypercall: errno -rc, operation `op`, detail `message`.
 * An errno this ABI does not know becomes EIO, its value kept in the detail.
 */
export function errorFromRc(rc: number, op: string, message?: string): HypervisorError {
  invariant(Number.isSafeInteger(rc) && rc < 0, `errorFromRc: rc ${rc} is not a negative errno`);
  const detail = message || NO_MESSAGE;
  const name = errnoName(-rc);
  if (Object.hasOwn(Errno, name)) return new HypervisorError(name as ErrnoName, op, detail);
  return new HypervisorError('EIO', op, `unknown errno ${-rc}: ${detail}`);
}

/**
 * The response reporting `error` for an `op` request: rc = -errno and the error's detail as
 * message, prefixed by the error's own op when that differs from `op` or `op` is not known (so
 * nothing is lost when the client rebuilds the error under its op).
 */
export function errorResponse(error: HypervisorError, op?: string): HypercallResponse {
  return { rc: -error.errno, message: error.op === op ? error.detail : `${error.op}: ${error.detail}` };
}
