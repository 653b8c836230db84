import {
  DEFAULT_COST_MODEL,
  asMfn,
  DOMID_INVALID,
  INVALID_MFN,
  P2mType,
  PAGE_SIZE,
  type DedupHost,
  type DomId,
  type FrameTable,
  type Gfn,
  type MachineMemory,
  type Mfn,
  type P2m,
  type P2mTable,
  type ReverseMap,
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
  checksumFrame(mfn: Mfn): number {
    return this.hashFn(this.view(mfn)) ^ 0x5bd1e995;
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

/** Trust group of each domain, as a test sets it: domains not listed are in group 0. */
export type GroupsOf = ReadonlyMap<number, number> | Readonly<Record<number, number>>;

/** `DedupHost.groupOf` over `groups` (group 0 for a domain not listed). */
export function groupOfFn(groups: GroupsOf = {}): (dom: DomId) => number {
  if (groups instanceof Map) return (dom) => groups.get(dom) ?? 0;
  const record = groups as Readonly<Record<number, number>>;
  return (dom) => record[dom] ?? 0;
}

/**
 * A host of `frames` frames whose frame 0 is the (allocated, all-zero) zero frame; `groups` gives
 * the trust group of each domain (group 0 for the others).
 */
export function fakeHost(
  frames: number,
  hashFn: (page: Uint8Array) => number,
  groups: GroupsOf = {},
): DedupHost & { memory: FakeMemory; frames: FakeFrameTable } {
  const memory = new FakeMemory(frames, hashFn);
  const table = new FakeFrameTable(frames);
  return { ...unusedHostParts(groups), memory, frames: table, zeroMfn: table.take(0) };
}

/**
 * The parts of a DedupHost that only scanning strategies use (p2m, merge, unmerge ...), as stubs
 * that fail the test if an index that does not scan ever calls them; `groupOf` answers from
 * `groups` (group 0 for a domain not listed).
 */
export function unusedHostParts(groups: GroupsOf = {}): Omit<DedupHost, 'memory' | 'frames' | 'zeroMfn'> {
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
    groupOf: groupOfFn(groups),
  };
}

/** A page whose every byte is `fill`. */
export function filledPage(fill: number): Uint8Array {
  return new Uint8Array(PAGE_SIZE).fill(fill);
}

/** One domain's p2m table in typed arrays, as the real one keeps it. */
export class FakeP2mTable implements P2mTable {
  private readonly mfns: Int32Array;
  private readonly types: Uint8Array;
  populated = 0;

  constructor(
    readonly dom: DomId,
    readonly size: number,
  ) {
    this.mfns = new Int32Array(size).fill(INVALID_MFN);
    this.types = new Uint8Array(size);
  }
  type(gfn: Gfn): P2mType {
    return (gfn >= 0 && gfn < this.size ? this.types[gfn]! : P2mType.invalid) as P2mType;
  }
  mfn(gfn: Gfn): Mfn {
    return (gfn >= 0 && gfn < this.size ? this.mfns[gfn]! : INVALID_MFN) as Mfn;
  }
  set(gfn: Gfn, mfn: Mfn, type: P2mType): void {
    if (!(gfn >= 0 && gfn < this.size)) throw new Error(`fake p2m: gfn ${gfn} outside dom ${this.dom}`);
    this.populated += (type !== P2mType.invalid ? 1 : 0) - (this.types[gfn] !== P2mType.invalid ? 1 : 0);
    this.mfns[gfn] = mfn;
    this.types[gfn] = type;
  }
  clear(gfn: Gfn): void {
    this.set(gfn, INVALID_MFN, P2mType.invalid);
  }
}

/** The reverse map of shared frames, in a Map of arrays (a test needs no O(1) remove). */
export class FakeReverseMap implements ReverseMap {
  private readonly byFrame = new Map<number, Array<[DomId, Gfn]>>();

  add(mfn: Mfn, dom: DomId, gfn: Gfn): void {
    const list = this.byFrame.get(mfn);
    if (list === undefined) this.byFrame.set(mfn, [[dom, gfn]]);
    else list.push([dom, gfn]);
  }
  remove(mfn: Mfn, dom: DomId, gfn: Gfn): void {
    const list = this.byFrame.get(mfn) ?? [];
    const i = list.findIndex(([d, g]) => d === dom && g === gfn);
    if (i < 0) throw new Error(`fake rmap: dom ${dom} gfn ${gfn} does not map mfn ${mfn}`);
    list.splice(i, 1);
    if (list.length === 0) this.byFrame.delete(mfn);
  }
  count(mfn: Mfn): number {
    return this.byFrame.get(mfn)?.length ?? 0;
  }
  forEach(mfn: Mfn, fn: (dom: DomId, gfn: Gfn) => void): void {
    // A copy, so that `fn` may move mappings, as the real reverse map allows.
    for (const [d, g] of [...(this.byFrame.get(mfn) ?? [])]) fn(d, g);
  }
  frames(): Iterable<Mfn> {
    return [...this.byFrame.keys()] as Mfn[];
  }
}

/** Every domain's {@link FakeP2mTable} and a {@link FakeReverseMap}. */
export class FakeP2m implements P2m {
  private readonly tables = new Map<number, FakeP2mTable>();
  readonly rmap = new FakeReverseMap();

  createTable(dom: DomId, size: number): FakeP2mTable {
    if (this.tables.has(dom)) throw new Error(`fake p2m: dom ${dom} has a table already`);
    const t = new FakeP2mTable(dom, size);
    this.tables.set(dom, t);
    return t;
  }
  destroyTable(dom: DomId): void {
    const t = this.tables.get(dom);
    if (t === undefined || t.populated !== 0) throw new Error(`fake p2m: dom ${dom} has no table or populated entries`);
    this.tables.delete(dom);
  }
  table(dom: DomId): FakeP2mTable | undefined {
    return this.tables.get(dom);
  }
  domains(): Iterable<DomId> {
    return [...this.tables.keys()] as DomId[];
  }
}
