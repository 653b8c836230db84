import { INVALID_MFN, type EvictionPolicy, type Mfn } from '@pagevisor/types';

/** A policy the test steers: the victim is `next` while it is tracked, else the oldest frame. */
export class PickPolicy implements EvictionPolicy {
  readonly name = 'pick';
  next: Mfn = INVALID_MFN;
  private readonly frames = new Set<Mfn>();
  get size(): number {
    return this.frames.size;
  }
  insert(mfn: Mfn): void {
    this.frames.add(mfn);
  }
  remove(mfn: Mfn): void {
    this.frames.delete(mfn);
  }
  touch(): void {}
  victim(): Mfn {
    if (this.frames.has(this.next)) return this.next;
    return this.frames.values().next().value ?? INVALID_MFN;
  }
  reset(): void {
    this.frames.clear();
  }
}
