/** Xen's errno values (xen/include/public/errno.h), returned negated by hypercalls. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EIO: 5,
  E2BIG: 7,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOSPC: 28,
  ENOSYS: 38,
  EOPNOTSUPP: 95,
} as const;

/** Name of an errno, e.g. `"ENOMEM"`. */
export type ErrnoName = keyof typeof Errno;
/** Value of an errno. */
export type ErrnoValue = (typeof Errno)[ErrnoName];

const ERRNO_NAMES = new Map<number, ErrnoName>(
  Object.entries(Errno).map(([k, v]) => [v, k as ErrnoName]),
);

/** Name of an errno value, or `E<value>` when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

/**
 * An expected failure of a hypervisor operation: out of frames, bad argument, no such domain...
 * The operation that throws it has changed nothing.
 */
export class HypervisorError extends Error {
  override readonly name = 'HypervisorError';
  /** Positive errno value (see {@link Errno}). */
  readonly errno: ErrnoValue;
  /** Operation that failed, e.g. `"populate_physmap"`. */
  readonly op: string;
  /** What was wrong, in words. */
  readonly detail: string;

  constructor(errno: ErrnoName, op: string, detail: string) {
    super(`${op}: ${errno}: ${detail}`);
    this.errno = Errno[errno];
    this.op = op;
    this.detail = detail;
  }

  /** Name of the errno, e.g. `"ENOMEM"`. */
  get errnoName(): string {
    return errnoName(this.errno);
  }
}

/** A broken invariant: a bug, never an expected failure. */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

/** Throws an {@link InvariantError} when `cond` is false. */
export function invariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw new InvariantError(message);
}
