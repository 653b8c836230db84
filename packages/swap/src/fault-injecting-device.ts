import { HypervisorError, PAGE_SIZE, type SwapDevice } from '@pagevisor/types';
import { FaultPlan, WriteFault } from './fault-plan.js';

/**
 * The one place faults are injected, shared by every device: bounds checks, then the
 * {@link FaultPlan} decides whether a read or write fails (EIO), is short (a part of the bytes
 * reaches the medium, then EIO) or finds the device full (ENOSPC) before the device's raw I/O runs.
 */
export abstract class FaultInjectingDevice implements SwapDevice {
  abstract readonly name: string;
  /** Slots the device holds. */
  readonly slots: number;
  /** The fault plan (an empty one when none was given). */
  readonly faults: FaultPlan;

  protected constructor(slots: number, faults: FaultPlan | undefined) {
    if (!Number.isInteger(slots) || slots <= 0) {
      throw new HypervisorError('EINVAL', 'swap_device', `slots must be a positive integer, not ${slots}`);
    }
    this.slots = slots;
    this.faults = faults ?? new FaultPlan();
  }

  /** Bytes of the device. */
  get bytes(): number {
    return this.slots * PAGE_SIZE;
  }

  write(offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    this.checkRange('swap_write', offset, src, srcOffset, length);
    const fate = this.faults.nextWrite();
    if (fate === WriteFault.enospc) {
      throw new HypervisorError('ENOSPC', 'swap_write', `device ${this.name} is full (injected)`);
    }
    if (fate === WriteFault.eio) {
      throw new HypervisorError('EIO', 'swap_write', `I/O error at byte ${offset} (injected)`);
    }
    if (fate === WriteFault.short) {
      const part = this.faults.shortLength(length);
      if (part > 0) this.rawWrite(offset, src, srcOffset, part);
      throw new HypervisorError('EIO', 'swap_write', `short write at byte ${offset}: ${part} of ${length} bytes (injected)`);
    }
    this.rawWrite(offset, src, srcOffset, length);
  }

  read(offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    this.checkRange('swap_read', offset, dst, dstOffset, length);
    if (this.faults.nextReadFails()) {
      throw new HypervisorError('EIO', 'swap_read', `I/O error at byte ${offset} (injected)`);
    }
    this.rawRead(offset, dst, dstOffset, length);
  }

  abstract sync(): void;
  abstract close(): void;

  /** Writes to the medium; called only once bounds and faults are checked. */
  protected abstract rawWrite(offset: number, src: Uint8Array, srcOffset: number, length: number): void;
  /** Reads from the medium; called only once bounds and faults are checked. */
  protected abstract rawRead(offset: number, dst: Uint8Array, dstOffset: number, length: number): void;

  private checkRange(op: string, offset: number, buf: Uint8Array, bufOffset: number, length: number): void {
    if (
      !Number.isInteger(offset) || !Number.isInteger(length) || !Number.isInteger(bufOffset) ||
      offset < 0 || length < 0 || bufOffset < 0 ||
      offset + length > this.bytes || bufOffset + length > buf.length
    ) {
      throw new HypervisorError('EINVAL', op, `range ${offset}+${length} (buffer ${bufOffset}/${buf.length}) outside device of ${this.bytes} bytes`);
    }
  }
}
