import {
  FrameFlags,
  HypervisorError,
  INVALID_MFN,
  InvariantError,
  invariant,
  NS_PER_MS,
  NS_PER_S,
  P2mType,
  PAGE_SIZE,
  Prng,
  type DedupHost,
  type DedupIndex,
  type DomId,
  type Gfn,
  type InsertReason,
  type Mfn,
} from '@pagevisor/types';
import { UnmergeCount } from '../unmerge-count.js';
import { EsxDomain } from './esx-domain.js';
import { checkKnob, ESX_KNOBS, resolveEsxOptions, type EsxDedupOptions, type EsxKnob } from './esx-options.js';
import { EsxSlot, EsxTable, NO_SLOT } from './esx-table.js';

/**
 * Transparent page sharing as in VMware ESX Server (Waldspurger, "Memory Resource Management in
 * VMware ESX Server", OSDI 2002), as a scanning {@link DedupIndex}.
 *
 * One global hash table ({@link EsxTable}) keyed by a page's 32-bit content hash holds two kinds
 * of entries: *shared* frames (write-protected, copy-on-write, reference-counted by the host's
 * frame table) and *hints* for pages seen once (domain, gfn, hash; the page is not
 * write-protected, so its content may have changed since). At every wake-up the scanner draws
 * candidate pages at random among the mergeable pages of each domain, at most
 * `scanRatePerDomainPagesPerS` per domain and `scanRateGlobalPagesPerS` over all of them. For a
 * candidate backed by a frame it:
 *
 * 1. skips it if it already maps the zero frame or a shared entry;
 * 2. hashes it; an all-zero page is merged onto the host's zero frame (as ESX and KSM do);
 * 3. walks the entries under that hash: a shared entry whose content is equal (the host confirms
 *    with a full compare) takes the page (`host.merge`); a hint of another page is re-hashed
 *    first — if that page changed, the hint is stale and dropped (`hint_stale`), else the hint's
 *    page is merged onto the candidate's frame, which becomes a shared entry in the hint's slot
 *    (`hint_hits`). A candidate whose frame is shared already keeps it as the target instead;
 * 4. with no match, enters a frame that is shared already (by sharing hypercalls) as a shared
 *    entry, or else leaves a hint for the page, replacing its older hint if it had one.
 *
 * Which pages are candidates mirrors KSM: `setDomainMergeable(dom, true)` marks every gfn of the
 * domain, `advise(dom, start, count, true)` a range; turning either off unmerges the pages that
 * map a shared entry (or the zero frame, when `populateZero` is off) through `host.unmerge` and
 * drops their hints. The host reports writes to and frees of shared frames through
 * {@link remove}; hints need no such report, they are checked when matched.
 *
 * Per scanned page the strategy allocates nothing and charges the host `p2mUpdateNs` for the
 * p2m read and `pageHashNs` per hash (the host's merge charges its own compare).
 */
export class EsxDedup implements DedupIndex {
  /** Name of the strategy. */
  readonly name = 'esx';
  /** Not inline: pages are found by scanning, not looked up when written. */
  readonly inline = false;
  /** See {@link EsxDedupOptions.populateZero}. */
  readonly populateZero: boolean;

  private rateDomain: number;
  private rateGlobal: number;
  private intervalNs: number;
  private readonly initialCapacity: number;
  private readonly prng: Prng;

  private host: DedupHost | undefined;
  private table: EsxTable | undefined;
  private zeroMfn: Mfn = INVALID_MFN;
  private zeroHash = 0;

  private readonly byDom = new Map<number, EsxDomain>();
  /** The same domains, in the order they were first marked: the scan order. */
  private domains: EsxDomain[] = [];
  /** Index into `domains` of the first domain served at the next wake-up (turns rotate). */
  private turn = 0;
  private globalCredit = 0;
  private lastWakeNs = -Infinity;
  private dueNs: number;
  /** CPU time of the current wake-up, charged to the host once at its end. */
  private cpuNs = 0;

  private wakes = 0;
  private pagesScanned = 0;
  private pagesSkipped = 0;
  private hintHits = 0;
  private hintStale = 0;
  private pagesMerged = 0;
  private zeroMerges = 0;
  private collisions = 0;
  private unmerged = 0;

  /** @param opts see {@link EsxDedupOptions}; unset fields take {@link DEFAULT_ESX_OPTIONS}. */
  constructor(opts: EsxDedupOptions = {}) {
    const o = resolveEsxOptions(opts);
    this.rateDomain = o.scanRatePerDomainPagesPerS;
    this.rateGlobal = o.scanRateGlobalPagesPerS;
    this.intervalNs = o.wakeIntervalMs * NS_PER_MS;
    this.populateZero = o.populateZero;
    this.initialCapacity = o.initialCapacity;
    this.prng = new Prng(o.seed);
    this.dueNs = this.intervalNs;
  }

  /** Shared-frame entries (hints not included). */
  get size(): number {
    return this.table?.shared ?? 0;
  }

  /** Sizes the table for every frame of `host.memory` and notes the zero frame's hash. Called once. */
  attach(host: DedupHost): void {
    invariant(this.host === undefined, 'esx dedup: attach called twice');
    invariant(
      Number.isInteger(host.zeroMfn) && host.zeroMfn >= 0 && host.zeroMfn < host.memory.frames,
      `esx dedup: zero frame ${host.zeroMfn} outside machine memory of ${host.memory.frames} frames`,
    );
    invariant(host.memory.isZeroFrame(host.zeroMfn), `esx dedup: zero frame ${host.zeroMfn} is not all zeros`);
    const byDom = this.byDom;
    this.table = new EsxTable(this.initialCapacity, host.memory.frames, {
      hintMoved(dom, gfn, slot) {
        const d = byDom.get(dom);
        if (d === undefined) throw new InvariantError(`esx dedup: table holds a hint of dom ${dom}, which is not tracked`);
        d.hintSlot[gfn] = slot;
      },
    });
    this.host = host;
    this.zeroMfn = host.zeroMfn;
    this.zeroHash = host.memory.hashFrame(host.zeroMfn) >>> 0;
  }

  /** A shared frame whose bytes equal `page` (full compare), or INVALID_MFN. Hints are not offered. */
  lookup(page: Uint8Array, hash: number): Mfn {
    const { host, table } = this.attached('lookup');
    if (page.length !== PAGE_SIZE) throw new InvariantError(`esx dedup: lookup of ${page.length} bytes, not a page`);
    for (let s = table.first(hash); s !== NO_SLOT; s = table.next(s, hash)) {
      if (table.kind(s) === EsxSlot.shared && host.memory.frameEquals(table.mfn(s), page)) return table.mfn(s);
    }
    return INVALID_MFN;
  }

  /**
   * Enters frame `mfn`, which must be shared (write-protected) already, as a shared entry under
   * `hash`, whatever the `reason`. The hypervisor does not call it (this strategy is not inline);
   * it is there for callers that share frames by other means.
   */
  insert(mfn: Mfn, hash: number, _reason: InsertReason): void {
    const { host, table } = this.attached('insert');
    if (mfn === this.zeroMfn || !(mfn >= 0 && mfn < table.frames) || (host.frames.flags(mfn) & FrameFlags.shared) === 0) {
      throw new InvariantError(`esx dedup: insert of mfn ${mfn}, which is not a shared frame other than the zero frame`);
    }
    table.insertShared(hash, mfn);
  }

  /** Drops `mfn`'s shared entry, if it has one: its last sharer writes it, or it is freed. */
  remove(mfn: Mfn): void {
    const table = this.table;
    if (table === undefined) return;
    const s = table.slotOf(mfn);
    if (s !== NO_SLOT) table.removeSlot(s);
  }

  /** True when `mfn` has a live shared entry. */
  contains(mfn: Mfn): boolean {
    return this.table !== undefined && this.table.slotOf(mfn) !== NO_SLOT;
  }

  /** Bytes of the table (11 a slot, 4 a machine frame) and of the per-domain arrays (12 a guest frame). */
  metadataBytes(): number {
    let bytes = this.table?.bytes() ?? 0;
    for (const d of this.domains) bytes += d.bytes();
    return bytes;
  }

  /**
   * Counters. `pages_scanned`: candidates drawn that had a frame; `pages_skipped`: drawn without
   * one (unpopulated, populate-on-demand, paged); `hints`, `shared_frames`: entries now;
   * `hint_hits`: hints whose page was merged; `hint_stale`: hints dropped because their page had
   * changed or gone (found on a match, or when the page itself is scanned again); `pages_merged`: pages merged onto a shared frame other than the zero frame
   * (a hint hit counts one); `zero_merges`: pages merged onto the zero frame; `collisions`: equal
   * hashes whose contents differed; `unmerged`: pages unmerged by advice; `mergeable_pages`:
   * candidates now.
   */
  stats(): Readonly<Record<string, number>> {
    const t = this.table;
    return {
      wakes: this.wakes,
      pages_scanned: this.pagesScanned,
      pages_skipped: this.pagesSkipped,
      hints: t?.hints ?? 0,
      hint_hits: this.hintHits,
      hint_stale: this.hintStale,
      shared_frames: t?.shared ?? 0,
      pages_merged: this.pagesMerged,
      zero_merges: this.zeroMerges,
      collisions: this.collisions,
      unmerged: this.unmerged,
      mergeable_pages: this.mergeablePages(),
      table_capacity: t?.capacity ?? 0,
      tombstones: t?.tombstones ?? 0,
      rebuilds: t?.rebuilds ?? 0,
    };
  }

  /**
   * Per-domain counters: `pages_scanned`, `merged` (its pages merged onto a shared frame other
   * than the zero frame), `zero_merges`, `hints` (its pages with a hint now), `mergeable_pages`.
   * All 0 for a domain never marked mergeable.
   */
  domainStats(dom: DomId): Readonly<Record<string, number>> {
    const d = this.byDom.get(dom);
    return {
      pages_scanned: d?.pagesScanned ?? 0,
      merged: d?.merged ?? 0,
      zero_merges: d?.zeroMerges ?? 0,
      hints: d?.hints ?? 0,
      mergeable_pages: d?.count ?? 0,
    };
  }

  /** The run-time tunables (see {@link EsxDedupOptions}). */
  knobs(): Readonly<Record<string, number>> {
    return {
      scanRatePerDomainPagesPerS: this.rateDomain,
      scanRateGlobalPagesPerS: this.rateGlobal,
      wakeIntervalMs: this.intervalNs / NS_PER_MS,
    };
  }

  /** Sets a tunable; an unknown name or a value out of range is an EINVAL HypervisorError. */
  setKnob(name: string, value: number | string): void {
    if (!(ESX_KNOBS as readonly string[]).includes(name)) {
      throw new HypervisorError('EINVAL', 'esx_set_knob', `unknown knob ${JSON.stringify(name)}; known: ${ESX_KNOBS.join(', ')}`);
    }
    checkKnob('esx_set_knob', name as EsxKnob, value);
    if (name === 'scanRatePerDomainPagesPerS') this.rateDomain = value;
    else if (name === 'scanRateGlobalPagesPerS') this.rateGlobal = value;
    else {
      this.intervalNs = value * NS_PER_MS;
      this.dueNs = (this.lastWakeNs === -Infinity ? 0 : this.lastWakeNs) + this.intervalNs;
    }
  }

  // ---- which pages are candidates ---------------------------------------------------------------

  /**
   * Marks `count` pages from `start` of `dom` mergeable or not (MADV_MERGEABLE /
   * MADV_UNMERGEABLE). Unmarking first unmerges every page of the range that maps a shared entry
   * (or the zero frame, when `populateZero` is off) and drops the range's hints; when the host
   * has fewer free frames than those copies need, this is an ENOMEM HypervisorError that changes
   * nothing (no page unmerged, marks and hints as they were).
   */
  advise(dom: DomId, start: Gfn, count: number, mergeable: boolean): void {
    const op = mergeable ? 'madvise_mergeable' : 'madvise_unmergeable';
    const d = this.domainFor(op, dom);
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > d.size) {
      throw new HypervisorError('EINVAL', op, `pages [${start}, ${start + count}) are outside dom ${dom}'s ${d.size} guest frames`);
    }
    if (mergeable) {
      for (let g = start; g < start + count; g++) d.mark(g as Gfn);
    } else {
      this.unmergeRange(op, d, start, count);
    }
  }

  /**
   * Marks all of `dom` mergeable (PR_SET_MEMORY_MERGE = 1: every gfn, whatever was advised
   * before) or, when it was, not (= 0: as MADV_UNMERGEABLE over the whole domain). Turning off a
   * domain not marked as a whole does nothing, as in Linux.
   */
  setDomainMergeable(dom: DomId, on: boolean): void {
    const op = 'set_memory_merge';
    if (on) {
      const d = this.domainFor(op, dom);
      d.whole = true;
      for (let g = 0; g < d.size; g++) d.mark(g as Gfn);
      return;
    }
    const d = this.byDom.get(dom);
    if (d === undefined || !d.whole) return;
    this.unmergeRange(op, d, 0, d.size);
    d.whole = false;
  }

  /**
   * True when `dom`'s page `gfn` is a candidate the scanner may draw: marked by `advise` or by
   * `setDomainMergeable`. False for a gfn out of the domain's range and for a domain never
   * marked (or forgotten). O(1).
   */
  isMergeable(dom: DomId, gfn: Gfn): boolean {
    const d = this.byDom.get(dom);
    return d !== undefined && gfn >= 0 && gfn < d.size && d.isMergeable(gfn);
  }

  /** `child` has just been forked from `parent`: it inherits the parent's candidate marks. */
  domainForked(parent: DomId, child: DomId): void {
    const from = this.byDom.get(parent);
    if (from === undefined) return;
    const to = this.domainFor('fork', child);
    to.whole = from.whole;
    for (let g = 0; g < Math.min(from.size, to.size); g++) if (from.isMergeable(g as Gfn)) to.mark(g as Gfn);
  }

  /** Forgets `dom` and drops its hints; its shared entries go as the host frees its pages. */
  domainDestroyed(dom: DomId): void {
    const d = this.byDom.get(dom);
    if (d === undefined) return;
    this.forget(d);
  }

  // ---- the scanner ----------------------------------------------------------------------------

  /** Time of the next wake-up (a past time means now); Infinity while no page is a candidate or a rate is 0. */
  nextWakeNs(): number {
    if (this.rateDomain === 0 || this.rateGlobal === 0 || this.mergeablePages() === 0) return Infinity;
    return this.dueNs;
  }

  /**
   * One wake-up at `nowNs`: each domain may scan `scanRatePerDomainPagesPerS` × the time since
   * the last wake-up (at most one wake interval, so the rates are never exceeded however the
   * scanner is driven; fractions carry over), all together `scanRateGlobalPagesPerS` × that
   * time; when the global limit binds, domains take one page each in turn, starting with a
   * different domain every wake-up. Draws are with replacement (a page may come up twice, as in
   * ESX's random scan), and a draw of a page without a frame uses up its share of the rate as
   * well (`pages_skipped`). A domain draws at most as many pages as it has candidates in one
   * wake-up, so large rates cannot make a wake-up of a small guest hash millions of pages. The
   * next wake-up is one interval later.
   */
  wake(nowNs: number): void {
    const { host } = this.attached('wake');
    if (!Number.isFinite(nowNs)) throw new HypervisorError('EINVAL', 'esx_wake', `time ${nowNs} ns is not finite`);
    this.dropVanishedDomains(host);
    const dtS = Math.min(Math.max(nowNs - this.lastWakeNs, 0), this.intervalNs) / NS_PER_S;
    this.lastWakeNs = nowNs;
    this.dueNs = nowNs + this.intervalNs;
    this.wakes++;
    this.cpuNs = 0;

    const domains = this.domains;
    const n = domains.length;
    let wanted = 0;
    for (const d of domains) {
      if (d.count === 0) {
        d.credit = 0;
        d.quota = 0;
        continue;
      }
      d.credit += this.rateDomain * dtS;
      // At most one draw per candidate a wake: however large the rate knobs, a wake's work is
      // bounded by the pages there are (the credit beyond that is dropped below).
      d.quota = Math.min(Math.floor(d.credit), d.count);
      wanted += d.quota;
    }
    this.globalCredit += this.rateGlobal * dtS;
    let global = Math.min(Math.floor(this.globalCredit), wanted);
    this.globalCredit -= global;
    const start = n === 0 ? 0 : this.turn++ % n;
    while (global > 0) {
      for (let k = 0; k < n && global > 0; k++) {
        const d = domains[(start + k) % n]!;
        if (d.quota === 0) continue;
        d.quota--;
        d.credit--;
        global--;
        this.scanOne(host, d);
      }
    }
    // Credit left unused (the global limit bound) does not pile up into a later burst.
    for (const d of domains) d.credit -= Math.floor(d.credit);
    this.globalCredit -= Math.floor(this.globalCredit);
    if (this.cpuNs > 0) host.chargeCpu(this.cpuNs);
  }

  private scanOne(host: DedupHost, d: EsxDomain): void {
    const cost = host.costModel;
    const table = this.table!;
    const memory = host.memory;
    const gfn = d.pick(this.prng);
    this.cpuNs += cost.p2mUpdateNs;
    const type = d.table.type(gfn);
    if (type !== P2mType.ram_rw && type !== P2mType.ram_shared) {
      this.pagesSkipped++;
      return;
    }
    this.pagesScanned++;
    d.pagesScanned++;
    const cur = d.table.mfn(gfn);
    if (cur === this.zeroMfn || table.slotOf(cur) !== NO_SLOT) {
      this.dropHint(d, gfn);
      return;
    }
    const hash = memory.hashFrame(cur) >>> 0;
    this.cpuNs += cost.pageHashNs;
    let own = d.hintSlot[gfn]!;
    if (own !== NO_SLOT && table.key(own) !== hash) {
      // The page changed since its hint was left: that hint is stale.
      this.dropHint(d, gfn);
      this.hintStale++;
      own = NO_SLOT;
    }
    if (hash === this.zeroHash) {
      this.cpuNs += cost.pageCompareNs;
      if (memory.isZeroFrame(cur) && host.merge(d.dom, gfn, this.zeroMfn)) {
        this.zeroMerges++;
        d.zeroMerges++;
        this.dropHint(d, gfn);
        return;
      }
    }
    const curShared = (host.frames.flags(cur) & FrameFlags.shared) !== 0;
    for (let s = table.first(hash); s !== NO_SLOT; s = table.next(s, hash)) {
      if (table.kind(s) === EsxSlot.shared) {
        if (host.merge(d.dom, gfn, table.mfn(s))) {
          this.pagesMerged++;
          d.merged++;
          this.dropHint(d, gfn);
          return;
        }
        this.collisions++;
        continue;
      }
      if (s === own) continue;
      if (this.tryHint(host, s, hash, d, gfn, cur, curShared)) return;
    }
    if (curShared) {
      // Shared already (by sharing hypercalls) and so write-protected: an entry, not a hint.
      this.dropHint(d, gfn);
      table.insertShared(hash, cur);
    } else if (own === NO_SLOT) {
      d.setHint(gfn, table.insertHint(hash, d.dom, gfn));
    }
  }

  /**
   * Checks the hint in slot `s` against candidate (`d`, `gfn`) mapping `cur`, both under `hash`:
   * drops it when its page changed or went, merges the two when their contents are equal.
   * Returns true when they were merged.
   */
  private tryHint(host: DedupHost, s: number, hash: number, d: EsxDomain, gfn: Gfn, cur: Mfn, curShared: boolean): boolean {
    const table = this.table!;
    const hd = this.byDom.get(table.hintDom(s));
    const hg = table.hintGfn(s);
    const ht = hd?.table.type(hg);
    const hm = hd === undefined ? INVALID_MFN : hd.table.mfn(hg);
    if (hd === undefined || (ht !== P2mType.ram_rw && ht !== P2mType.ram_shared) || hm === this.zeroMfn || table.slotOf(hm) !== NO_SLOT) {
      // The hinted page is gone or was shared since: nothing to share with it any more.
      this.staleHint(s);
      return false;
    }
    if (hm === cur) {
      // Both pages map one frame, shared by other means: it becomes an entry.
      hd.setHint(hg, NO_SLOT);
      table.hintToShared(s, cur);
      this.dropHint(d, gfn);
      return true;
    }
    this.cpuNs += host.costModel.pageHashNs;
    if (host.memory.hashFrame(hm) >>> 0 !== hash) {
      this.staleHint(s);
      return false;
    }
    const hmShared = (host.frames.flags(hm) & FrameFlags.shared) !== 0;
    // Merge onto the frame that is shared already, if one is, else onto the candidate's frame.
    const ontoHint = hmShared && !curShared;
    const merged = ontoHint ? host.merge(d.dom, gfn, hm) : host.merge(hd.dom, hg, cur);
    if (!merged) {
      this.collisions++;
      return false;
    }
    hd.setHint(hg, NO_SLOT);
    table.hintToShared(s, ontoHint ? hm : cur);
    this.dropHint(d, gfn);
    this.hintHits++;
    this.pagesMerged++;
    if (ontoHint) d.merged++;
    else hd.merged++;
    return true;
  }

  private staleHint(s: number): void {
    const table = this.table!;
    this.byDom.get(table.hintDom(s))?.setHint(table.hintGfn(s), NO_SLOT);
    table.removeSlot(s);
    this.hintStale++;
  }

  private dropHint(d: EsxDomain, gfn: Gfn): void {
    const s = d.hintSlot[gfn]!;
    if (s === NO_SLOT) return;
    d.setHint(gfn, NO_SLOT);
    this.table!.removeSlot(s);
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * Unmerges every page of [start, start + count) that maps a shared entry (or the zero frame
   * when populate does not map it), then unmarks the range and drops its hints. The frames the
   * copies need are counted first: ENOMEM (named `op`), changing nothing, when fewer are free.
   */
  private unmergeRange(op: string, d: EsxDomain, start: number, count: number): void {
    const { host, table } = this.attached(op);
    const need = new UnmergeCount(count);
    for (let g = start; g < start + count; g++) {
      const gfn = g as Gfn;
      if (d.table.type(gfn) !== P2mType.ram_shared) continue;
      const mfn = d.table.mfn(gfn);
      if (mfn === this.zeroMfn) {
        if (!this.populateZero) need.addZero();
      } else if (table.slotOf(mfn) !== NO_SLOT) {
        need.addShared(mfn);
      }
    }
    need.check(op, host);
    for (let g = start; g < start + count; g++) {
      const gfn = g as Gfn;
      if (d.table.type(gfn) !== P2mType.ram_shared) continue;
      const mfn = d.table.mfn(gfn);
      const ours = table.slotOf(mfn) !== NO_SLOT || (mfn === this.zeroMfn && !this.populateZero);
      if (!ours) continue;
      if (!host.unmerge(d.dom, gfn)) {
        throw new InvariantError(`esx dedup: no free frame to unmerge dom ${d.dom} gfn ${g}, though the frames needed were counted free`);
      }
      this.unmerged++;
    }
    for (let g = start; g < start + count; g++) {
      this.dropHint(d, g as Gfn);
      d.unmark(g as Gfn);
    }
  }

  private mergeablePages(): number {
    let n = 0;
    for (const d of this.domains) n += d.count;
    return n;
  }

  /** The state of `dom`, made on first use; ESRCH when the host has no such domain. */
  private domainFor(op: string, dom: DomId): EsxDomain {
    const { host } = this.attached(op);
    const t = host.p2m.table(dom);
    if (t === undefined) throw new HypervisorError('ESRCH', op, `no domain ${dom}`);
    let d = this.byDom.get(dom);
    if (d !== undefined && d.table !== t) {
      // A table we did not see go: the domain was replaced.
      this.forget(d);
      d = undefined;
    }
    if (d === undefined) {
      d = new EsxDomain(dom, t);
      this.byDom.set(dom, d);
      this.domains.push(d);
    }
    return d;
  }

  private forget(d: EsxDomain): void {
    for (let g = 0; g < d.size; g++) this.dropHint(d, g as Gfn);
    this.byDom.delete(d.dom);
    this.domains = this.domains.filter((x) => x !== d);
  }

  private dropVanishedDomains(host: DedupHost): void {
    for (const d of this.domains) {
      if (host.p2m.table(d.dom) !== d.table) {
        this.forget(d);
        // `forget` replaced the array; start over on the new one.
        this.dropVanishedDomains(host);
        return;
      }
    }
  }

  private attached(op: string): { host: DedupHost; table: EsxTable } {
    const host = this.host;
    const table = this.table;
    if (host === undefined || table === undefined) throw new InvariantError(`esx dedup: ${op} before attach`);
    return { host, table };
  }

  /**
   * Checks the table (see {@link EsxTable.audit}) and, against the host: every shared entry's
   * frame is shared, not free, not the zero frame, and still hashes to its key (two entries may
   * hold equal contents: the host refuses merges across trust groups or into a domain with
   * sharing disabled); every hint names a mergeable page of a known domain whose
   * back-pointer names the hint's slot; the per-domain lists are sound.
   */
  audit(): string[] {
    const host = this.host;
    const table = this.table;
    if (host === undefined || table === undefined) return ['esx dedup: not attached'];
    const problems = table.audit().map((p) => `esx table: ${p}`);
    const { memory, frames } = host;
    for (let s = 0; s < table.capacity; s++) {
      const kind = table.kind(s);
      if (kind === EsxSlot.shared) {
        const mfn = table.mfn(s);
        if (mfn < 0 || mfn >= table.frames) continue; // reported by the table's audit
        if (mfn === this.zeroMfn) problems.push(`esx dedup: the zero frame has a shared entry (slot ${s})`);
        if (frames.isFree(mfn)) {
          problems.push(`esx dedup: mfn ${mfn} has a shared entry but is free`);
          continue;
        }
        if ((frames.flags(mfn) & FrameFlags.shared) === 0) problems.push(`esx dedup: mfn ${mfn} has a shared entry but is not shared`);
        const hash = memory.hashFrame(mfn) >>> 0;
        if (hash !== table.key(s)) {
          problems.push(`esx dedup: mfn ${mfn} entered under hash ${table.key(s)} but its content hashes to ${hash} (changed while shared)`);
        }
      } else if (kind === EsxSlot.hint) {
        const dom = table.hintDom(s);
        const gfn = table.hintGfn(s);
        const d = this.byDom.get(dom);
        if (d === undefined) problems.push(`esx dedup: hint in slot ${s} names dom ${dom}, which is not tracked`);
        else if (!(gfn >= 0 && gfn < d.size)) problems.push(`esx dedup: hint in slot ${s} names gfn ${gfn} outside dom ${dom}`);
        else {
          if (d.hintSlot[gfn] !== s) problems.push(`esx dedup: hint of dom ${dom} gfn ${gfn} in slot ${s} but the page says ${d.hintSlot[gfn]}`);
          if (!d.isMergeable(gfn)) problems.push(`esx dedup: hint for dom ${dom} gfn ${gfn}, which is not mergeable`);
        }
      }
    }
    for (const d of this.domains) {
      problems.push(...d.audit().map((p) => `esx dedup: ${p}`));
      for (let g = 0; g < d.size; g++) {
        const s = d.hintSlot[g]!;
        if (s !== NO_SLOT && (table.kind(s) !== EsxSlot.hint || table.hintDom(s) !== d.dom || table.hintGfn(s) !== g)) {
          problems.push(`esx dedup: dom ${d.dom} gfn ${g} points at slot ${s}, which is not its hint`);
        }
      }
    }
    return problems;
  }
}
