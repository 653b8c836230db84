import {
  DEFAULT_COST_MODEL,
  asMfn,
  DOMID_INVALID,
  PAGE_SIZE,
  type DedupHost,
  type DomId,
  type FrameTable,
  type Gfn,
  type MachineMemory,
  type Mfn,
} from '@pagevisor/types';

/**
 * A MachineMemory written against @pagevisor/types alone, with a hash chosen by the test: a
 * deliberately weak one makes different contents collide, which the real xxhash almost never does.
 */
export class FakeMemory implements MachineMemory {
  readonly bytes: Uint8Array;

  constructor(
    readonly frames: number,
    private readonly hashFn: (page: Uint8Array) => number,
  ) {
    this.bytes = new Uint8Array(frames * PAGE_SIZE);
  }

  private view(mfn: Mfn): Uint8Array {
    return this.bytes.subarray(mfn * PAGE_SIZE, (mfn + 1) * PAGE_SIZE);
  }
  read(mfn: Mfn, offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    dst.set(this.view(mfn).subarray(offset, offset + length), dstOffset);
  }
  write(mfn: Mfn, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    this.view(mfn).set(src.subarray(srcOffset, srcOffset + length), offset);
  }
  copyFrame(dst: Mfn, src: Mfn): void {
    this.view(dst).set(this.view(src));
  }
  zeroFrame(mfn: Mfn): void {
    this.view(mfn).fill(0);
  }
  isZeroFrame(mfn: Mfn): boolean {
    return this.view(mfn).every((b) => b === 0);
  }
  framesEqual(a: Mfn, b: Mfn): boolean {
    return this.frameEquals(a, this.view(b));
  }
  compareFrames(a: Mfn, b: Mfn): number {
    const x = this.view(a);
    const y = this.view(b);
    for (let i = 0; i < PAGE_SIZE; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return 0;
  }
  frameEquals(mfn: Mfn, page: Uint8Array): boolean {
    const v = this.view(mfn);
    if (page.length !== PAGE_SIZE) return false;
    for (let i = 0; i < PAGE_SIZE; i++) if (v[i] !== page[i]) return false;
    return true;
  }
  hashFrame(mfn: Mfn): number {
    return this.hashFn(this.view(mfn));
  }
  hashPage(page: Uint8Array): number {
    return this.hashFn(page);
  }
}

/** A frame table that knows only which frames are free; everything else is unused by dedup. */
export class FakeFrameTable implements FrameTable {
  private readonly free: Uint8Array;

  constructor(readonly totalFrames: number) {
    this.free = new Uint8Array(totalFrames).fill(1);
  }
  get freeFrames(): number {
    return this.free.reduce((a, b) => a + b, 0);
  }
  /** Marks `mfn` allocated (the fake hands out frames by number). */
  take(mfn: number): Mfn {
    this.free[mfn] = 0;
    return asMfn(mfn);
  }
  allocFrame(_owner: DomId, _gfn: Gfn): Mfn {
    throw new Error('not used by dedup');
  }
  freeFrame(mfn: Mfn): void {
    this.free[mfn] = 1;
  }
  isFree(mfn: Mfn): boolean {
    return this.free[mfn] === 1;
  }
  owner(): DomId {
    return DOMID_INVALID;
  }
  gfn(): Gfn {
    throw new Error('not used by dedup');
  }
  setOwner(): void {}
  refcount(): number {
    return 0;
  }
  addRef(): number {
    return 0;
  }
  flags(): number {
    return 0;
  }
  setFlags(): void {}
  addDomain(): void {}
  removeDomain(): void {}
  hasDomain(): boolean {
    return false;
  }
  totPages(): number {
    return 0;
  }
  maxPages(): number {
    return 0;
  }
  setMaxPages(): void {}
  addTotPages(): void {}
}

/** A host of `frames` frames whose frame 0 is the (allocated, all-zero) zero frame. */
export function fakeHost(
  frames: number,
  hashFn: (page: Uint8Array) => number,
): DedupHost & { memory: FakeMemory; frames: FakeFrameTable } {
  const memory = new FakeMemory(frames, hashFn);
  const table = new FakeFrameTable(frames);
  return { ...unusedHostParts(), memory, frames: table, zeroMfn: table.take(0) };
}

/**
 * The parts of a DedupHost that only scanning strategies use (p2m, merge, unmerge ...), as stubs
 * that fail the test if an index that does not scan ever calls them.
 */
export function unusedHostParts(): Omit<DedupHost, 'memory' | 'frames' | 'zeroMfn'> {
  const unused = (what: string) => (): never => {
    throw new Error(`test host: ${what} is not provided to this test`);
  };
  return {
    p2m: { createTable: unused('p2m'), destroyTable: unused('p2m'), table: unused('p2m'), domains: unused('p2m'), rmap: undefined as never },
    costModel: DEFAULT_COST_MODEL,
    numaNodes: 1,
    nodeOf: () => 0,
    merge: unused('merge'),
    unmerge: unused('unmerge'),
    chargeCpu: () => {},
  };
}

/** A page whose every byte is `fill`. */
export function filledPage(fill: number): Uint8Array {
  return new Uint8Array(PAGE_SIZE).fill(fill);
}
