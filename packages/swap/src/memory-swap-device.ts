/*
 * Fault model of the memory device: the medium itself never fails and never loses a byte; every
 * fault comes from the optional FaultPlan (see fault-injecting-device.ts): a failed write (EIO)
 * writes nothing, a short write writes a prefix of its bytes and then reports EIO, a full device
 * (ENOSPC) writes nothing, a failed read (EIO) leaves the destination untouched. sync() is a no-op
 * (nothing is volatile) and the contents vanish with the process.
 */
import { HypervisorError } from '@pagevisor/types';
import { FaultInjectingDevice } from './fault-injecting-device.js';
import type { FaultPlan } from './fault-plan.js';

/** Options of a {@link MemorySwapDevice}. */
export interface MemorySwapDeviceOptions {
  /** Slots of 4 KiB. */
  readonly slots: number;
  /** Faults to inject (default none). */
  readonly faults?: FaultPlan;
}

/** A swap device of 4 KiB slots held in an ArrayBuffer. */
export class MemorySwapDevice extends FaultInjectingDevice {
  readonly name = 'memory';
  private bytesView: Uint8Array | undefined;

  constructor(options: MemorySwapDeviceOptions) {
    super(options.slots, options.faults);
    this.bytesView = new Uint8Array(this.bytes);
  }

  sync(): void {}

  close(): void {
    this.bytesView = undefined;
  }

  /** The raw bytes, to corrupt behind the device's back in tests. */
  medium(): Uint8Array {
    return this.open('swap_medium');
  }

  protected rawWrite(offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    this.open('swap_write').set(src.subarray(srcOffset, srcOffset + length), offset);
  }

  protected rawRead(offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    dst.set(this.open('swap_read').subarray(offset, offset + length), dstOffset);
  }

  private open(op: string): Uint8Array {
    if (this.bytesView === undefined) throw new HypervisorError('EINVAL', op, 'device is closed');
    return this.bytesView;
  }
}
