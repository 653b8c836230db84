import {
  HypervisorError,
  INVALID_MFN,
  NS_PER_MS,
  P2mType,
  type DedupHost,
  type DedupIndex,
  type DomId,
  type Gfn,
  type Mfn,
} from '@pagevisor/types';

/**
 * A small scanning strategy for the simulator's tests, written against `@pagevisor/types` alone:
 * every `sleep_millisecs` it hashes the next `pages_to_scan` pages of the mergeable domains and
 * merges a page into an indexed frame of the same hash (the host confirms the content). One pass
 * over every mergeable page is a full scan. Knobs: `run` (0 stops), `pages_to_scan`,
 * `sleep_millisecs`, `max_page_sharing` (refused with EBUSY once anything was merged).
 * It records what it was told (`advised`, `calls`) so tests can check the simulator's calls.
 */
export class TinyScanner implements DedupIndex {
  readonly name = 'tiny';
  readonly inline = false;
  readonly populateZero = false;
  /** `madvise` ranges it was given, as `dom:start+count=on`. */
  readonly advised: string[] = [];
  /** Domains marked mergeable. */
  readonly mergeable = new Set<DomId>();
  /** Simulated times of its wake-ups. */
  readonly wakes: number[] = [];

  private host!: DedupHost;
  private readonly byHash = new Map<number, Mfn>();
  private readonly indexed = new Set<Mfn>();
  private run = 1;
  private pagesToScan = 100;
  private sleepMs = 20;
  private maxPageSharing = 256;
  private lastWakeNs = 0;
  private domCursor = 0;
  private gfnCursor = 0;
  private fullScans = 0;
  private pagesScanned = 0;
  private merged = 0;

  constructor(opts: { pages_to_scan?: number; sleep_millisecs?: number } = {}) {
    this.pagesToScan = opts.pages_to_scan ?? this.pagesToScan;
    this.sleepMs = opts.sleep_millisecs ?? this.sleepMs;
  }

  attach(host: DedupHost): void {
    this.host = host;
  }

  lookup(): Mfn {
    return INVALID_MFN;
  }

  insert(): void {}

  remove(mfn: Mfn): void {
    this.indexed.delete(mfn);
  }

  contains(mfn: Mfn): boolean {
    return this.indexed.has(mfn);
  }

  get size(): number {
    return this.indexed.size;
  }

  metadataBytes(): number {
    return this.indexed.size * 16;
  }

  stats(): Readonly<Record<string, number>> {
    return { full_scans: this.fullScans, pages_scanned: this.pagesScanned, merged: this.merged, wakes: this.wakes.length };
  }

  audit(): string[] {
    return [];
  }

  nextWakeNs(): number {
    if (this.run !== 1 || this.mergeable.size === 0) return Infinity;
    return this.lastWakeNs + this.sleepMs * NS_PER_MS;
  }

  wake(nowNs: number): void {
    this.wakes.push(nowNs);
    this.lastWakeNs = nowNs;
    const doms = [...this.mergeable].sort((a, b) => a - b);
    for (let n = 0; n < this.pagesToScan; n++) {
      if (this.domCursor >= doms.length) {
        this.domCursor = 0;
        this.gfnCursor = 0;
        this.fullScans++;
        // A scan of nothing would spin; one full scan per wake at most.
        break;
      }
      const dom = doms[this.domCursor]!;
      const table = this.host.p2m.table(dom);
      if (table === undefined || this.gfnCursor >= table.size) {
        this.domCursor++;
        this.gfnCursor = 0;
        n--;
        continue;
      }
      const gfn = this.gfnCursor++ as Gfn;
      const type = table.type(gfn);
      if (type !== P2mType.ram_rw && type !== P2mType.ram_shared) continue;
      this.scanPage(dom, gfn, table.mfn(gfn));
    }
  }

  private scanPage(dom: DomId, gfn: Gfn, mfn: Mfn): void {
    this.pagesScanned++;
    this.host.chargeCpu(this.host.costModel.pageHashNs);
    if (mfn === this.host.zeroMfn) return;
    const hash = this.host.memory.hashFrame(mfn);
    const other = this.byHash.get(hash);
    if (other !== undefined && other !== mfn && this.indexed.has(other) && this.host.merge(dom, gfn, other)) {
      this.merged++;
      return;
    }
    if (other === undefined || !this.indexed.has(other)) {
      this.byHash.set(hash, mfn);
      this.indexed.add(mfn);
    }
  }

  advise(dom: DomId, start: Gfn, count: number, mergeable: boolean): void {
    this.advised.push(`${dom}:${start}+${count}=${mergeable}`);
  }

  setDomainMergeable(dom: DomId, on: boolean): void {
    if (on) this.mergeable.add(dom);
    else this.mergeable.delete(dom);
  }

  setKnob(name: string, value: number): void {
    switch (name) {
      case 'run':
        this.run = value;
        return;
      case 'pages_to_scan':
        this.pagesToScan = value;
        return;
      case 'sleep_millisecs':
        this.sleepMs = value;
        return;
      case 'max_page_sharing':
        if (this.merged > 0) throw new HypervisorError('EBUSY', 'set_knob', 'max_page_sharing: pages are shared');
        this.maxPageSharing = value;
        return;
      default:
        throw new HypervisorError('EINVAL', 'set_knob', `unknown knob ${name}`);
    }
  }

  knobs(): Readonly<Record<string, number>> {
    return { run: this.run, pages_to_scan: this.pagesToScan, sleep_millisecs: this.sleepMs, max_page_sharing: this.maxPageSharing };
  }

  domainStats(dom: DomId): Readonly<Record<string, number>> {
    return { mergeable: this.mergeable.has(dom) ? 1 : 0, cpuNs: -1 };
  }
}
