/*
 * Fault model of the file device. The file is a flat array of 4 KiB slots, created (truncated) at
 * open and sized to slots × 4 KiB; reads and writes are positioned (pread/pwrite through
 * node:fs readSync/writeSync with an explicit position), so no shared file offset exists.
 * - Real errors of the file system (EIO, ENOSPC, EBADF ...) surface as HypervisorError with the
 *   same errno when it is EIO or ENOSPC, EIO otherwise; a real short write is retried until done.
 * - Injected faults (optional FaultPlan, see fault-injecting-device.ts): a failed write (EIO) or a
 *   full device (ENOSPC) writes nothing; a short write writes a prefix of its bytes and reports
 *   EIO, so the slot's old content must be treated as unknown; a failed read (EIO) leaves the
 *   destination untouched.
 * - Durability follows the fsync policy: 'never' (only explicit sync()), 'always' (after every
 *   write), { everyWrites: n } (after every n-th write). Unsynced writes may be lost in a crash of
 *   the host; within one process they are always read back (page cache).
 * - Nothing checks the file's bytes: a byte changed behind the device's back is returned as is;
 *   the swap area's per-slot checksum is what detects it.
 */
import { closeSync, fsyncSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { HypervisorError } from '@pagevisor/types';
import { FaultInjectingDevice } from './fault-injecting-device.js';
import type { FaultPlan } from './fault-plan.js';

/** When the file device calls fsync. */
export type FsyncPolicy = 'never' | 'always' | { readonly everyWrites: number };

/** Options of {@link FileSwapDevice.open}. */
export interface FileSwapDeviceOptions {
  /** Path of the file; created, or truncated when it exists. */
  readonly path: string;
  /** Slots of 4 KiB. */
  readonly slots: number;
  /** When to fsync (default 'never': only on sync()). */
  readonly fsync?: FsyncPolicy;
  /** Faults to inject (default none). */
  readonly faults?: FaultPlan;
  /** Remove the file when the device closes (a temporary area; default false). */
  readonly removeOnClose?: boolean;
}

/** A swap device backed by a real file of 4 KiB slots. */
export class FileSwapDevice extends FaultInjectingDevice {
  readonly name = 'file';
  /** Path of the file. */
  readonly path: string;
  /** fsync calls made so far. */
  fsyncCount = 0;
  private fd: number;
  private readonly everyWrites: number;
  private writesSinceSync = 0;
  private readonly removeOnClose: boolean;

  private constructor(options: FileSwapDeviceOptions, fd: number) {
    super(options.slots, options.faults);
    this.path = options.path;
    this.removeOnClose = options.removeOnClose === true;
    this.fd = fd;
    const policy = options.fsync ?? 'never';
    this.everyWrites = policy === 'never' ? 0 : policy === 'always' ? 1 : policy.everyWrites;
    if (!Number.isInteger(this.everyWrites) || this.everyWrites < 0) {
      throw new HypervisorError('EINVAL', 'swap_open', `fsync everyWrites must be a positive integer`);
    }
  }

  /** Creates (or truncates) the file at `path` and sizes it to `slots` × 4 KiB. */
  static open(options: FileSwapDeviceOptions): FileSwapDevice {
    const fd = openSync(options.path, 'w+');
    try {
      const device = new FileSwapDevice(options, fd);
      ftruncateSync(fd, device.bytes);
      return device;
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  sync(): void {
    fsyncSync(this.openFd('swap_sync'));
    this.fsyncCount++;
    this.writesSinceSync = 0;
  }

  close(): void {
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
      if (this.removeOnClose) rmSync(this.path, { force: true });
    }
  }

  protected rawWrite(offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    const fd = this.openFd('swap_write');
    let done = 0;
    try {
      // writeSync may write less than asked (a real short write): continue from where it stopped.
      while (done < length) {
        const n = writeSync(fd, src, srcOffset + done, length - done, offset + done);
        if (n <= 0) throw new HypervisorError('EIO', 'swap_write', `write returned ${n} at byte ${offset + done}`);
        done += n;
      }
    } catch (e) {
      throw fsError(e, 'swap_write');
    }
    if (this.everyWrites > 0 && ++this.writesSinceSync >= this.everyWrites) this.sync();
  }

  protected rawRead(offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    const fd = this.openFd('swap_read');
    let done = 0;
    try {
      while (done < length) {
        const n = readSync(fd, dst, dstOffset + done, length - done, offset + done);
        if (n <= 0) throw new HypervisorError('EIO', 'swap_read', `unexpected end of file at byte ${offset + done}`);
        done += n;
      }
    } catch (e) {
      throw fsError(e, 'swap_read');
    }
  }

  private openFd(op: string): number {
    if (this.fd < 0) throw new HypervisorError('EINVAL', op, 'device is closed');
    return this.fd;
  }
}

function fsError(e: unknown, op: string): HypervisorError {
  if (e instanceof HypervisorError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  return new HypervisorError(code === 'ENOSPC' ? 'ENOSPC' : 'EIO', op, String((e as Error).message ?? e));
}
