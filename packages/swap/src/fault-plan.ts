import { Prng } from '@pagevisor/types';

/** Options of a {@link FaultPlan}; every fault is off by default. */
export interface FaultPlanOptions {
  /** Seed of the PRNG drawing the probabilistic faults (default 1). */
  readonly seed?: number;
  /** Probability that a write fails with EIO and writes nothing (default 0). */
  readonly writeErrorProbability?: number;
  /** Probability that a read fails with EIO (default 0). */
  readonly readErrorProbability?: number;
  /** Probability that a write writes only a part of its bytes, then fails with EIO (default 0). */
  readonly shortWriteProbability?: number;
  /** Write operation numbers (1-based, counting every write asked of the device) that fail with EIO. */
  readonly failWriteAt?: readonly number[];
  /** Read operation numbers (1-based) that fail with EIO. */
  readonly failReadAt?: readonly number[];
  /** Write operation numbers (1-based) that are short writes. */
  readonly shortWriteAt?: readonly number[];
  /** After this many successful writes the device is full: every later write fails with ENOSPC. */
  readonly fullAfterWrites?: number;
}

/** What a planned write does. */
export const WriteFault = { none: 0, eio: 1, short: 2, enospc: 3 } as const;
/** A value of {@link WriteFault}. */
export type WriteFaultValue = (typeof WriteFault)[keyof typeof WriteFault];

/**
 * Which device operations fail: EIO on read or write, short writes (part written, then EIO) and
 * a full device (ENOSPC), by seeded probability or at chosen operation numbers. `clear()` turns
 * every fault off so a run can go on.
 */
export class FaultPlan {
  private readonly prng: Prng;
  private writeErrorProbability: number;
  private readErrorProbability: number;
  private shortWriteProbability: number;
  private failWriteAt: Set<number>;
  private failReadAt: Set<number>;
  private shortWriteAt: Set<number>;
  private fullAfterWrites: number;
  /** Writes asked of the device so far. */
  writes = 0;
  /** Reads asked of the device so far. */
  reads = 0;
  /** Writes that succeeded so far. */
  writesDone = 0;
  /** Faults injected so far. */
  injected = 0;

  constructor(options: FaultPlanOptions = {}) {
    this.prng = new Prng(options.seed ?? 1);
    this.writeErrorProbability = options.writeErrorProbability ?? 0;
    this.readErrorProbability = options.readErrorProbability ?? 0;
    this.shortWriteProbability = options.shortWriteProbability ?? 0;
    this.failWriteAt = new Set(options.failWriteAt ?? []);
    this.failReadAt = new Set(options.failReadAt ?? []);
    this.shortWriteAt = new Set(options.shortWriteAt ?? []);
    this.fullAfterWrites = options.fullAfterWrites ?? Infinity;
  }

  /** Draws the fate of the next write. */
  nextWrite(): WriteFaultValue {
    const op = ++this.writes;
    let fault: WriteFaultValue = WriteFault.none;
    if (this.writesDone >= this.fullAfterWrites) fault = WriteFault.enospc;
    else if (this.failWriteAt.has(op)) fault = WriteFault.eio;
    else if (this.shortWriteAt.has(op)) fault = WriteFault.short;
    // Draw the PRNG only when a probability is set, so plans without one stay deterministic by op number.
    else if (this.writeErrorProbability > 0 && this.prng.nextFloat() < this.writeErrorProbability)
      fault = WriteFault.eio;
    else if (this.shortWriteProbability > 0 && this.prng.nextFloat() < this.shortWriteProbability)
      fault = WriteFault.short;
    if (fault === WriteFault.none) this.writesDone++;
    else this.injected++;
    return fault;
  }

  /** Draws the fate of the next read: true when it fails with EIO. */
  nextReadFails(): boolean {
    const op = ++this.reads;
    const fails =
      this.failReadAt.has(op) ||
      (this.readErrorProbability > 0 && this.prng.nextFloat() < this.readErrorProbability);
    if (fails) this.injected++;
    return fails;
  }

  /** A pseudo-random length in [1, length) for a short write. */
  shortLength(length: number): number {
    return length <= 1 ? 0 : 1 + this.prng.nextInt(length - 1);
  }

  /** Turns every fault off: the device works again from now on. */
  clear(): void {
    this.writeErrorProbability = 0;
    this.readErrorProbability = 0;
    this.shortWriteProbability = 0;
    this.failWriteAt.clear();
    this.failReadAt.clear();
    this.shortWriteAt.clear();
    this.fullAfterWrites = Infinity;
  }
}
