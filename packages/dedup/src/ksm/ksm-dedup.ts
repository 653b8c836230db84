import {
  HypervisorError,
  INVALID_MFN,
  invariant,
  InvariantError,
  P2mType,
  PAGE_SIZE,
  type DedupHost,
  type DedupIndex,
  type DomId,
  type Gfn,
  type MachineMemory,
  type InsertReason,
  type Mfn,
} from '@pagevisor/types';
import { ABORTED, ContentTreap, NIL, SEARCH_ABORT, type TreapKey } from './content-treap.js';
import type { FrameIndex } from './frame-index.js';
import { ScanTimeAdvisor } from './advisor.js';
import { ADVISOR_OWNS_PAGES_TO_SCAN, checkKnob, DEFAULT_KSM_OPTIONS, resolveKsmOptions, type KsmKnob, type KsmKnobValues, type KsmOptions } from './ksm-options.js';
import { BYTES_PER_RMAP_ITEM, DomainSlot, ItemFlags, KSM_RMAP_ITEM_BYTES, RmapItems } from './rmap-items.js';
import { shouldSkipItem } from './smart-scan.js';
import { StableTree } from './stable-tree.js';
import type { KnobFrames } from '../partitioned-dedup.js';
import { UnmergeCount } from '../unmerge-count.js';

const { mergeable: MERGEABLE, item: ITEM, unstable: UNSTABLE, parity: PARITY, stable: STABLE, zero: ZERO } = ItemFlags;
const RAM_RW = P2mType.ram_rw;
const RAM_SHARED = P2mType.ram_shared;

/**
 * With `sleep_millisecs` 0, the least simulated time one batch of ksmd takes (1 µs): the fixed
 * cost of one pass of ksm_scan_thread's loop (ksm_thread_mutex, the run checks, the wait queue
 * test that does not sleep, a cond_resched per page), so that a batch that scans nothing (the one
 * that only runs off the end of the mm list) still moves the clock.
 */
export const MIN_BATCH_NS = 1000;

/**
 * Orders a page against the items of an unstable tree: by checksum (an item keeps the one it
 * was inserted with, so this order never breaks), then by the content of the frames they map now.
 * A tree item of equal checksum whose page is no longer a candidate (unmergeable, no frame, the
 * zero frame, a KSM page, or the very frame searched for) stops the search, as
 * get_mergeable_page failing does in the kernel.
 */
class UnstableKey implements TreapKey {
  /** Frame of the page searched for. */
  mfn = 0;
  /** Its checksum. */
  checksum = 0;
  /** Frame of the last tree item compared page to page. */
  treeMfn = -1;
  constructor(
    private readonly items: RmapItems,
    private readonly memory: MachineMemory,
    private readonly kpages: FrameIndex,
    private readonly zeroMfn: number,
  ) {}

  compareTo(item: number): number {
    const items = this.items;
    const c = items.checksum[item]!;
    if (this.checksum !== c) return this.checksum < c ? -1 : 1;
    if ((items.flags[item]! & MERGEABLE) === 0) return SEARCH_ABORT;
    const slot = items.slotOf(item);
    const gfn = (item - slot.base) as Gfn;
    const t = slot.table.type(gfn);
    if (t !== RAM_RW && t !== RAM_SHARED) return SEARCH_ABORT;
    const m = slot.table.mfn(gfn);
    if (m === this.zeroMfn || m === this.mfn || this.kpages.get(m) >= 0) return SEARCH_ABORT;
    this.treeMfn = m;
    const d = this.memory.compareFrames(this.mfn as Mfn, m);
    return d < 0 ? -1 : d > 0 ? 1 : 0;
  }
}

/**
 * Linux KSM (mm/ksm.c, as of Linux 6.18), rebuilt as a scanning {@link DedupIndex} on the simulated
 * clock: every `sleep_millisecs` (with 0: batch after batch, each taking the simulated time of its
 * scan work, at least {@link MIN_BATCH_NS}) it scans `pages_to_scan` mergeable pages, domain by
 * domain (in the kernel's mm_slot list order: a domain that becomes mergeable during a full scan
 * goes just behind the cursor, between full scans at the end) and gfn by gfn, and for each does
 * what `cmp_and_merge_page` does (in the order of Linux 6.11 and later, "don't waste time
 * searching stable tree for fast changing page"):
 *
 * 1. a page still mapping the KSM page its rmap item hangs off: nothing to do; an item whose page
 *    no longer maps it (a write broke the sharing) leaves it now, counters corrected (all the
 *    node's items when its KSM page is gone: remove_node_from_stable_tree);
 * 2. the page's checksum (xxhash) is compared with its last one: changed, the page is volatile
 *    this scan and goes no further (so merging takes two full scans);
 * 3. with `use_zero_pages`, a page of zeros is merged onto the zero frame (ksm_zero_pages);
 * 4. the stable tree (KSM pages ordered by content) is searched: a KSM page with room under
 *    `max_page_sharing` takes the page (pages_sharing + 1);
 * 5. the unstable tree (unchanged pages of this scan, by content, emptied after every full scan) is
 *    searched: a match becomes a KSM page shared by both; else the page joins the tree.
 *
 * Content beyond `max_page_sharing` mappings gets more KSM pages, the dups of a stable_node_chain.
 * `smart_scan` skips pages that keep failing to merge, `merge_across_nodes` = 0 keeps one pair
 * of trees per NUMA node, `run` = 2 unmerges everything. Counters carry KSM's sysfs names.
 *
 * A full scan ends as in ksm_do_scan: the call for the page after the last one runs off the end
 * of the list (full_scans + 1) and ends that batch, so N pages take floor(N / pages_to_scan) + 1
 * wake-ups. A KSM page whose last mapping goes (written, unmerged, dropped, freed) leaves a stale
 * stable node: its frame is no longer a KSM page, but the node stays in its tree or chain, still
 * counted with its items in pages_shared, pages_sharing, stable_node_dups and merging_pages, until
 * the scan reaches one of its items or a stable tree search meets it (ksm_get_folio failing). A
 * chain emptied so stays in stable_node_chains until a search meets it. With the host's
 * `zeroPageUnmapped` hook, ksm_zero_pages drops at the write or unmap of the page, as in Linux.
 *
 * Not inline: whole-page writes are not looked up (`lookup` finds nothing, `insert` is a bug) and
 * populated pages get frames of their own. Per page it keeps {@link BYTES_PER_RMAP_ITEM} bytes in
 * typed arrays sized to each domain's p2m table; per KSM page, a stable node in typed arrays.
 *
 * Where it departs from the kernel, and why:
 * - the unstable trees order contents by checksum, then memcmp (the kernel: memcmp alone): a
 *   total order on contents all the same, whose comparisons mostly end on two integers, not two
 *   pages (the simulated CPU is still charged a page compare per tree node visited, as the kernel
 *   spends). An unstable tree item is keyed by the checksum it was inserted with, so a page written while
 *   in the tree misleads no search, and a page gone from under the tree stops a search only when
 *   its checksum ties (the kernel stops at any gone page on the way);
 * - a merge of two pages keeps the tree page's frame as the KSM page (the kernel keeps the
 *   scanned page's); pages mapping the zero frame are not scanned (the kernel's zero pte is not an
 *   anonymous page); on a host without the `zeroPageUnmapped` hook, a write to one is noticed at
 *   the next scan (ksm_zero_pages corrected then);
 * - `setDomainMergeable(dom, false)` unmerges and clears every page of the domain, advised or not;
 * - a destroyed domain's items are freed at once (the kernel's __ksm_exit leaves a scanned mm's
 *   items to ksmd's next visit), and a domain left with nothing mergeable keeps its place in the
 *   list (the kernel drops its mm_slot at the scan and queues it again behind the cursor later);
 * - the unstable trees are treaps ordered as said above, not red-black trees by memcmp of the
 *   pages' current contents (the stable trees are the kernel's, shape included: see
 *   {@link StableTree}).
 */
export class KsmDedup implements DedupIndex, KnobFrames {
  /** Name of the strategy. */
  readonly name = 'ksm';
  /** Whole-page writes are not looked up: merging is the scanner's. */
  readonly inline = false;
  /** Populated pages get frames of their own. */
  readonly populateZero = false;
  /**
   * Bytes of pagevisor's own metadata per scanned page (one rmap item in typed arrays). Linux's
   * rmap item is {@link KSM_RMAP_ITEM_BYTES}, the figure KSM's profit counters charge.
   */
  readonly bytesPerRmapItem = BYTES_PER_RMAP_ITEM;

  private readonly opts: KsmKnobValues;
  private host: DedupHost | undefined;
  private memory!: MachineMemory;
  private zeroMfn = INVALID_MFN as number;
  private zeroChecksum = 0;
  private readonly items = new RmapItems();
  private unstable!: ContentTreap;
  private stable!: StableTree;
  private key!: UnstableKey;

  private readonly slots = new Map<number, DomainSlot>();
  /** Domains in scanning order (the kernel's mm_slot list). */
  private readonly scanList: DomainSlot[] = [];
  /** Cursor: index in scanList (-1 between full scans) and gfn of the next page to look at. */
  private curPos = -1;
  private curGfn = 0;
  private curMfn = 0;
  /** Generation of the unstable trees: emptied (and this advanced) after every full scan. */
  private generation = 0;
  /** Items of the current unstable trees were dropped without leaving them: rebuild the trees. */
  private unstableDirty = false;
  private nowNs = 0;
  private nextWake = 0;

  private fullScans = 0;
  private pagesScanned = 0;
  private pagesSkipped = 0;
  private pagesUnshared = 0;
  private rmapItems = 0;
  private ksmZeroPages = 0;
  private mergeablePages = 0;
  private hashes = 0;
  private visited = 0;
  /** ksmd's simulated CPU since the strategy started, in ns (what the advisor reads). */
  private ksmdCpuNs = 0;
  private readonly advisor = new ScanTimeAdvisor();

  /** @param opts tunables (sysfs names); unset fields take {@link DEFAULT_KSM_OPTIONS}. EINVAL when out of range. */
  constructor(opts: KsmOptions = {}) {
    this.opts = resolveKsmOptions(opts);
  }

  /** KSM pages (stable nodes that are pages, not chains). */
  get size(): number {
    return this.host === undefined ? 0 : this.stable.kpages;
  }

  /** Sizes the trees for the host's NUMA nodes and computes the zero page's checksum. Called once. */
  attach(host: DedupHost): void {
    invariant(this.host === undefined, 'ksm: attach called twice');
    invariant(host.numaNodes >= 1 && host.numaNodes <= 256, `ksm: ${host.numaNodes} NUMA nodes`);
    invariant(host.memory.isZeroFrame(host.zeroMfn), `ksm: zero frame ${host.zeroMfn} is not all zeros`);
    this.host = host;
    this.memory = host.memory;
    this.zeroMfn = host.zeroMfn;
    this.zeroChecksum = host.memory.checksumFrame(host.zeroMfn) >>> 0;
    this.stable = new StableTree(host.memory, this.items, host.numaNodes, this.opts.max_page_sharing, this.opts.stable_node_chains_prune_millisecs);
    this.unstable = new ContentTreap(host.numaNodes, { left: this.items.left, right: this.items.right, parent: null, prio: null });
    this.key = new UnstableKey(this.items, host.memory, this.stable.frames, host.zeroMfn);
  }

  /** KSM is not inline: nothing is found at write time. */
  lookup(_page: Uint8Array, _hash: number): Mfn {
    return INVALID_MFN;
  }

  /** KSM is not inline: the hypervisor must never offer it a frame. */
  insert(mfn: Mfn, _hash: number, _reason: InsertReason): void {
    throw new InvariantError(`ksm: insert of mfn ${mfn}, but KSM is not an inline strategy`);
  }

  /**
   * Frame `mfn` is freed or about to be written by its last sharer: when it is a KSM page, it is
   * one no more (the frame may be reused at once), but its stable node stays, stale, with its
   * items and in the counters, until the scan or a stable tree search meets it (as
   * ksm_get_folio finds a freed KSM page's node stale). A node with no item left (its domain
   * was destroyed, whose items go at once here) is pruned now, as ksmd would prune it on its
   * next visit of the exiting mm's items. Other frames: nothing.
   */
  remove(mfn: Mfn): void {
    if (this.host === undefined) return;
    const stable = this.stable;
    const node = stable.frames.get(mfn);
    if (node < 0) return;
    if (stable.count[node] === 0) stable.prune(node);
    else stable.markStale(node);
  }

  /**
   * `dom`'s page `gfn`, which mapped the zero frame, stops mapping it (a write's copy-on-write
   * fault, MADV_DONTNEED, decrease_reservation, an unmerge): when KSM merged it there, it leaves
   * ksm_zero_pages and the domain's zero_pages now, as Linux counts it out at the fault or the
   * unmap (ksm_might_unmap_zero_page). Other pages, and domains KSM forgot: nothing.
   */
  zeroPageUnmapped(dom: DomId, gfn: Gfn): void {
    const slot = this.slots.get(dom);
    if (slot === undefined || !(gfn >= 0 && gfn < slot.size)) return;
    const i = slot.base + gfn;
    if ((this.items.flags[i]! & ZERO) !== 0) this.dropZero(slot, i);
  }

  /** True when `mfn` is a KSM page (a live stable node's frame). */
  contains(mfn: Mfn): boolean {
    return this.host !== undefined && this.stable.frames.get(mfn) >= 0;
  }

  /** Bytes of every array KSM holds: rmap items, stable nodes and frame index, tree buffers. */
  metadataBytes(): number {
    if (this.host === undefined) return this.items.bytes;
    return this.items.bytes + this.stable.bytes + this.unstable.ownBytes;
  }

  /**
   * KSM's counters, as in /sys/kernel/mm/ksm: pages_shared (KSM pages in use), pages_sharing
   * (further mappings of them), pages_unshared (items in unstable trees), pages_volatile (the
   * other items: rmap_items - shared - sharing - unshared), full_scans, pages_scanned,
   * pages_skipped (smart_scan), ksm_zero_pages, general_profit ((pages_sharing + ksm_zero_pages) *
   * PAGE_SIZE - rmap_items * {@link KSM_RMAP_ITEM_BYTES}, Linux's sizeof(struct ksm_rmap_item)),
   * stable_node_chains, stable_node_dups; and rmap_items. Stale KSM pages count until pruned.
   */
  stats(): Readonly<Record<string, number>> {
    const shared = this.host === undefined ? 0 : this.stable.pagesShared;
    const sharing = this.host === undefined ? 0 : this.stable.pagesSharing;
    return {
      pages_shared: shared,
      pages_sharing: sharing,
      pages_unshared: this.pagesUnshared,
      pages_volatile: Math.max(0, this.rmapItems - shared - sharing - this.pagesUnshared),
      full_scans: this.fullScans,
      pages_scanned: this.pagesScanned,
      pages_skipped: this.pagesSkipped,
      ksm_zero_pages: this.ksmZeroPages,
      general_profit: (sharing + this.ksmZeroPages) * PAGE_SIZE - this.rmapItems * KSM_RMAP_ITEM_BYTES,
      stable_node_chains: this.host === undefined ? 0 : this.stable.chains,
      stable_node_dups: this.host === undefined ? 0 : this.stable.dups,
      rmap_items: this.rmapItems,
    };
  }

  /**
   * KSM's per-process counters for `dom` (/proc/PID/ksm_stat): rmap_items, merging_pages (its
   * pages on KSM pages), zero_pages (merged onto the zero frame), profit ((merging_pages +
   * zero_pages) * PAGE_SIZE - rmap_items * {@link KSM_RMAP_ITEM_BYTES}, ksm_process_profit).
   * merge_any (1 while PR_SET_MEMORY_MERGE is on, ksm_merge_any), mergeable (1 while any of its
   * pages is mergeable, ksm_mergeable). Zeros for a domain KSM never saw.
   */
  domainStats(dom: DomId): Readonly<Record<string, number>> {
    const s = this.slots.get(dom);
    const rmap = s?.rmapItems ?? 0;
    const merging = s?.mergingPages ?? 0;
    const zero = s?.zeroPages ?? 0;
    const mergeAny = s?.mergeAny === true ? 1 : 0;
    return {
      rmap_items: rmap,
      merging_pages: merging,
      zero_pages: zero,
      profit: (merging + zero) * PAGE_SIZE - rmap * KSM_RMAP_ITEM_BYTES,
      merge_any: mergeAny,
      mergeable: mergeAny === 1 || (s?.mergeable ?? 0) > 0 ? 1 : 0,
    };
  }

  /** Current tunables by sysfs name. */
  knobs(): Readonly<Record<string, number>> {
    return { ...this.opts };
  }

  /**
   * Sets tunable `name` (a sysfs name of {@link KsmOptions}). EINVAL for an unknown name or a
   * value out of range; EBUSY for max_page_sharing or merge_across_nodes while pages_shared is
   * not 0 (stale KSM pages not yet pruned included), or when remove_all_stable_nodes meets a KSM
   * page in use (having pruned the stale nodes it met first, as the kernel does); EINVAL for
   * pages_to_scan while advisor_mode is scan-time; a new advisor_mode resets pages_to_scan (see
   * {@link KsmOptions.advisor_mode}); a new sleep_millisecs wakes ksmd at once;
   * `run` = 2 unmerges every page KSM merged (see {@link KsmOptions.run}); when fewer frames are
   * free than that needs, it throws ENOMEM having changed nothing (run keeps its value).
   */
  setKnob(name: string, value: number | string): void {
    const op = 'ksm_set_knob';
    const v = checkKnob(op, name, value);
    const knob = name as KsmKnob;
    if (knob === 'pages_to_scan' && this.opts.advisor_mode === 1) throw new HypervisorError('EINVAL', op, ADVISOR_OWNS_PAGES_TO_SCAN);
    if (this.opts[knob] === v) return;
    if ((knob === 'max_page_sharing' || knob === 'merge_across_nodes') && this.host !== undefined) {
      // As the kernel: `ksm_pages_shared || remove_all_stable_nodes()` is EBUSY.
      const shared = this.stable.pagesShared;
      if (shared > 0 || this.stable.removeAllUnlessBusy()) {
        throw new HypervisorError('EBUSY', op, `${knob} cannot change while ${this.size} KSM pages exist (pages_shared ${shared}); set run to 2 first`);
      }
    }
    // Checked before anything changes: a refused run = 2 leaves run, pages and counters as they were.
    if (knob === 'run' && v === 2 && this.host !== undefined) this.countUnmergeAll().check('ksm_run_unmerge', this.host);
    this.opts[knob] = v;
    if (this.host !== undefined) {
      this.stable.maxPageSharing = this.opts.max_page_sharing;
      this.stable.pruneMillisecs = this.opts.stable_node_chains_prune_millisecs;
      // sleep_millisecs_store wakes ksmd (wake_up_interruptible(&ksm_iter_wait)): its next batch
      // runs now, not when the old sleep ends. Now is no earlier than the last wake-up.
      if (knob === 'sleep_millisecs') this.nextWake = Math.min(this.nextWake, this.nowNs);
    }
    if (knob === 'run' && v === 2) this.unmergeAll();
    if (knob === 'advisor_mode') {
      // set_advisor_defaults, on a change of mode only.
      if (v === 1) this.advisor.reset();
      this.opts.pages_to_scan = v === 1 ? this.opts.advisor_min_pages_to_scan : DEFAULT_KSM_OPTIONS.pages_to_scan;
    }
  }

  /**
   * Simulated time of the next wake-up; Infinity when stopped, when nothing is mergeable, or when
   * `pages_to_scan` and `sleep_millisecs` are both 0 (ksmd would spin doing nothing: no batch can
   * change anything until a knob does). After an idle spell it may lie in the past: wake at once
   * then (the kernel wakes ksmd when work comes).
   */
  nextWakeNs(): number {
    if (this.host === undefined || this.opts.run !== 1) return Infinity;
    if (this.mergeablePages === 0 && this.rmapItems === 0) return Infinity;
    if (this.opts.pages_to_scan === 0 && this.opts.sleep_millisecs === 0) return Infinity;
    return this.nextWake;
  }

  /**
   * One batch of ksmd at `nowNs` (ksm_do_scan): asks for up to `pages_to_scan` pages (skipped
   * pages do not count) and scans each; the call that runs off the end of the list counts the
   * full scan and ends the batch (so the batch after the last page's may scan nothing). Charges
   * the simulated CPU, and schedules the next batch `sleep_millisecs` later, or with 0 when this
   * batch's scan work is done (its simulated CPU time, at least {@link MIN_BATCH_NS}). Does
   * nothing when `run` is not 1.
   */
  wake(nowNs: number): void {
    const host = this.host;
    if (host === undefined || this.opts.run !== 1) return;
    this.nowNs = nowNs;
    const comparisons0 = this.unstable.comparisons + this.stable.tree.comparisons + this.stable.comparisons;
    const hashes0 = this.hashes;
    const visited0 = this.visited;
    const advised = this.opts.advisor_mode === 1;
    let budget = this.opts.pages_to_scan;
    let scanEnded = false;
    if (budget > 0 && this.scanList.length > 0 && (this.mergeablePages > 0 || this.rmapItems > 0)) {
      if (this.curPos < 0) {
        this.curPos = 0;
        this.curGfn = 0;
        if (advised) this.advisor.startScan(nowNs);
      }
      while (budget > 0) {
        // scan_get_next_rmap_item: the next page, or the end of the full scan.
        if (!this.findNext()) {
          this.endFullScan();
          scanEnded = true;
          break;
        }
        const slot = this.scanList[this.curPos]!;
        this.cmpAndMerge(slot, this.curGfn, slot.base + this.curGfn, this.curMfn);
        this.pagesScanned++;
        budget--;
        this.curGfn++;
      }
    }
    const c = host.costModel;
    const comparisons = this.unstable.comparisons + this.stable.tree.comparisons + this.stable.comparisons - comparisons0;
    const ns = (this.visited - visited0) * c.p2mUpdateNs + (this.hashes - hashes0) * c.pageHashNs + comparisons * c.pageCompareNs;
    if (ns > 0) host.chargeCpu(ns);
    this.ksmdCpuNs += ns;
    // The advisor runs as the full scan ends, this batch's work done (the batch ends there too).
    if (scanEnded && advised) this.opts.pages_to_scan = this.advisor.stopScan(nowNs + ns, this.ksmdCpuNs, this.opts);
    const sleep = this.opts.sleep_millisecs;
    this.nextWake = nowNs + (sleep > 0 ? sleep * 1e6 : Math.max(ns, MIN_BATCH_NS));
  }

  /**
   * MADV_MERGEABLE / MADV_UNMERGEABLE on `count` pages from `start` of `dom`. Unmergeable pages
   * merged by KSM are unmerged first (each gets a frame of its own); when fewer frames are free
   * than that needs, throws ENOMEM having changed nothing. Their rmap items go at the next scan,
   * as in the kernel.
   */
  advise(dom: DomId, start: Gfn, count: number, mergeable: boolean): void {
    const host = this.attached('madvise');
    if (mergeable) {
      this.markMergeable(this.slotFor(host, dom), start, start + count);
      return;
    }
    const slot = this.slots.get(dom);
    if (slot === undefined) return;
    this.unmergeRange(host, slot, start, start + count, 'madvise_unmergeable');
    this.clearMergeable(slot, start, start + count);
  }

  /**
   * PR_SET_MEMORY_MERGE: `on` makes every page of `dom` mergeable, present and future ones;
   * off unmerges every page of `dom` KSM merged and makes them all unmergeable (ENOMEM as
   * {@link advise}, changing nothing).
   */
  setDomainMergeable(dom: DomId, on: boolean): void {
    const host = this.attached('set_memory_merge');
    if (on) {
      const slot = this.slotFor(host, dom);
      slot.mergeAny = true;
      this.markMergeable(slot, 0, slot.size);
      return;
    }
    const slot = this.slots.get(dom);
    if (slot === undefined) return;
    this.unmergeRange(host, slot, 0, slot.size, 'set_memory_merge');
    this.clearMergeable(slot, 0, slot.size);
    slot.mergeAny = false;
  }

  /**
   * `child` has just been forked from `parent`: it inherits PR_SET_MEMORY_MERGE and every
   * MADV_MERGEABLE page, as Linux fork copies MMF_VM_MERGE_ANY and VM_MERGEABLE, and the parent's
   * pages on the zero frame count in its zero_pages and again in ksm_zero_pages (ksm_fork). It
   * has no rmap items: its pages on KSM pages count in pages_sharing and its merging_pages once
   * the scan reaches them, as the kernel's forked KSM pages do.
   */
  domainForked(parent: DomId, child: DomId): void {
    const from = this.slots.get(parent);
    if (from === undefined) return;
    const host = this.attached('fork');
    const to = this.slotFor(host, child);
    to.mergeAny = from.mergeAny;
    const flags = this.items.flags;
    const n = Math.min(from.size, to.size);
    for (let g = 0; g < n; g++) {
      const f = flags[from.base + g]!;
      if ((f & MERGEABLE) !== 0) this.markMergeable(to, g, g + 1);
      // The child's pte maps the zero page as its parent's does: ksm_fork counts it in.
      if ((f & ZERO) !== 0) {
        flags[to.base + g]! |= ZERO;
        to.zeroPages++;
        this.ksmZeroPages++;
      }
    }
  }

  /**
   * True when `dom`'s page `gfn` is a merge candidate, exactly the pages the scanner looks at:
   * inside a MADV_MERGEABLE range or in a domain under PR_SET_MEMORY_MERGE. False for a gfn out
   * of the domain's range and for a domain KSM never saw (or forgot at domainDestroyed). O(1).
   */
  isMergeable(dom: DomId, gfn: Gfn): boolean {
    const slot = this.slots.get(dom);
    if (slot === undefined || !(gfn >= 0 && gfn < slot.size)) return false;
    return (this.items.flags[slot.base + gfn]! & MERGEABLE) !== 0;
  }

  /**
   * Frames `setKnob(name, value)` would allocate now: for `run` = 2 (from another value), the
   * private copies its unmerge needs (see {@link UnmergeCount}); 0 for every other change. A
   * caller applying one knob to several strategies (PartitionedDedup) checks the sum first, so
   * that a refusal changes nothing in any of them.
   */
  framesForKnob(name: string, value: number | string): number {
    if (name !== 'run' || value !== 2 || this.opts.run === 2 || this.host === undefined) return 0;
    return this.countUnmergeAll().frames(this.host.frames);
  }

  /** Marks gfns [from, to) of `slot`'s domain mergeable. */
  private markMergeable(slot: DomainSlot, from: number, to: number): void {
    const flags = this.items.flags;
    for (let g = from; g < to; g++) {
      const i = slot.base + g;
      if ((flags[i]! & MERGEABLE) !== 0) continue;
      flags[i]! |= MERGEABLE;
      slot.mergeable++;
      this.mergeablePages++;
    }
  }

  /** `dom` is about to be destroyed: its items leave the trees and the counters, its slot goes. */
  domainDestroyed(dom: DomId): void {
    const slot = this.slots.get(dom);
    if (slot === undefined) return;
    const flags = this.items.flags;
    for (let g = 0; g < slot.size; g++) {
      const i = slot.base + g;
      if ((flags[i]! & ITEM) !== 0) this.freeItem(slot, i);
    }
    this.ksmZeroPages -= slot.zeroPages;
    this.mergeablePages -= slot.mergeable;
    // Rebuild before the range is cleared: the rebuild walks the tree through the items' links.
    this.cleanUnstable();
    const pos = this.scanList.indexOf(slot);
    this.scanList.splice(pos, 1);
    if (this.curPos > pos) this.curPos--;
    else if (this.curPos === pos) this.curGfn = 0;
    this.slots.delete(dom);
    this.items.freeRange(slot);
  }

  /**
   * Broken invariants, in words: the stable trees (see StableTree.audit), the unstable trees
   * (shape, and only items of the current generation), every counter against a recount of the
   * items, global and per domain.
   */
  audit(): string[] {
    const host = this.host;
    if (host === undefined) return [];
    const problems = this.stable.audit(host, this.opts.merge_across_nodes === 0);
    const report = (msg: string): void => {
      if (problems.length < 60) problems.push(msg);
    };
    const items = this.items;
    const current = this.parityBit();
    let inTrees = 0;
    for (let r = 0; r < this.unstable.roots.length; r++) {
      for (const p of this.unstable.check(r)) report(`unstable ${p}`);
      inTrees += this.unstable.sizes[r]!;
      let prev = -1;
      this.unstable.forEachInOrder(r, (i) => {
        const f = items.flags[i]!;
        if ((f & (ITEM | UNSTABLE)) !== (ITEM | UNSTABLE) || (f & PARITY) !== current) {
          report(`unstable tree ${r}: item ${i} has flags ${f}`);
        }
        // Checksums are the items' own, fixed while in the tree: their order never breaks.
        if (items.checksum[i]! < prev) report(`unstable tree ${r}: item ${i} out of checksum order`);
        prev = items.checksum[i]!;
      });
    }
    let rmap = 0;
    let unshared = 0;
    let currentUnstable = 0;
    let zero = 0;
    let mergeable = 0;
    for (const slot of this.scanList) {
      let sRmap = 0;
      let sMerging = 0;
      let sZero = 0;
      let sMergeable = 0;
      for (let g = 0; g < slot.size; g++) {
        const i = slot.base + g;
        const f = items.flags[i]!;
        if ((f & MERGEABLE) !== 0) sMergeable++;
        if ((f & ZERO) !== 0) sZero++;
        if ((f & ITEM) === 0) {
          if ((f & (UNSTABLE | STABLE)) !== 0) report(`dom ${slot.dom} gfn ${g}: no rmap item but flags ${f}`);
          continue;
        }
        sRmap++;
        if ((f & STABLE) !== 0) sMerging++;
        if ((f & UNSTABLE) !== 0) {
          unshared++;
          if ((f & PARITY) === current) currentUnstable++;
        }
        if ((f & (STABLE | UNSTABLE)) === (STABLE | UNSTABLE)) report(`dom ${slot.dom} gfn ${g}: item both stable and unstable`);
      }
      if (sRmap !== slot.rmapItems) report(`dom ${slot.dom}: rmap_items ${slot.rmapItems}, recounted ${sRmap}`);
      if (sMerging !== slot.mergingPages) report(`dom ${slot.dom}: merging_pages ${slot.mergingPages}, recounted ${sMerging}`);
      if (sZero !== slot.zeroPages) report(`dom ${slot.dom}: zero_pages ${slot.zeroPages}, recounted ${sZero}`);
      if (sMergeable !== slot.mergeable) report(`dom ${slot.dom}: ${slot.mergeable} mergeable pages counted, ${sMergeable} flagged`);
      if (items.slotOf(slot.base) !== slot) report(`dom ${slot.dom}: item range not owned by its slot`);
      rmap += sRmap;
      zero += sZero;
      mergeable += sMergeable;
    }
    if (rmap !== this.rmapItems) report(`rmap_items ${this.rmapItems}, recounted ${rmap}`);
    if (unshared !== this.pagesUnshared) report(`pages_unshared ${this.pagesUnshared}, recounted ${unshared}`);
    if (currentUnstable !== inTrees) report(`${currentUnstable} items of this generation flagged unstable, trees hold ${inTrees}`);
    if (zero !== this.ksmZeroPages) report(`ksm_zero_pages ${this.ksmZeroPages}, recounted ${zero}`);
    if (mergeable !== this.mergeablePages) report(`${this.mergeablePages} mergeable pages counted, ${mergeable} flagged`);
    if (this.curPos > this.scanList.length) report(`cursor at domain ${this.curPos} of ${this.scanList.length}`);
    return problems;
  }

  // ---- the scanner -------------------------------------------------------------------------

  /**
   * Moves the cursor to the next page to scan in this full scan (the kernel's
   * scan_get_next_rmap_item): a mergeable page with a frame of its own. On the way, items of pages
   * that are gone or unmergeable are freed, zero-page counts of written pages corrected, new pages
   * get an item, and smart_scan skips what it skips. False at the end of the full scan. Called
   * once per page returned, as the kernel calls it once per page it scans.
   */
  private findNext(): boolean {
    const items = this.items;
    const flags = items.flags;
    const zero = this.zeroMfn;
    const kpages = this.stable.frames;
    const smart = this.opts.smart_scan === 1;
    while (this.curPos < this.scanList.length) {
      const slot = this.scanList[this.curPos]!;
      if (slot.busy) {
        const table = slot.table;
        const base = slot.base;
        for (let g = this.curGfn; g < slot.size; g++) {
          const i = base + g;
          const f = flags[i]!;
          if ((f & (MERGEABLE | ITEM | ZERO)) === 0) continue;
          const t = table.type(g as Gfn);
          const m = t === RAM_RW || t === RAM_SHARED ? table.mfn(g as Gfn) : -1;
          if ((f & ZERO) !== 0 && m !== zero) this.dropZero(slot, i);
          if ((f & MERGEABLE) === 0 || m < 0 || m === zero) {
            if ((f & ITEM) !== 0) this.freeItem(slot, i);
            continue;
          }
          if ((f & ITEM) === 0) this.newItem(slot, i);
          this.visited++;
          // Never skip KSM pages: their items must keep following them.
          if (smart && kpages.get(m) < 0 && shouldSkipItem(items.age, items.skips, i)) {
            this.skipItem(i);
            continue;
          }
          this.curGfn = g;
          this.curMfn = m;
          return true;
        }
      }
      this.curPos++;
      this.curGfn = 0;
    }
    return false;
  }

  /** cmp_and_merge_page for item `i` (page `g` of `slot`), which maps frame `m`. */
  private cmpAndMerge(slot: DomainSlot, g: number, i: number, m: number): void {
    const host = this.host!;
    const items = this.items;
    const stable = this.stable;
    const kpage = stable.frames.get(m);
    let f = items.flags[i]!;
    if ((f & STABLE) !== 0) {
      if (items.left[i] === kpage) return;
      // The page no longer maps its KSM page (copy-on-write broke it): the counters learn it now.
      stable.detach(i);
    }
    f = items.flags[i]!;
    if ((f & UNSTABLE) !== 0) this.leaveUnstable(i, f);
    if (kpage >= 0) {
      // Mapped onto a KSM page behind KSM's back (the kernel's forked KSM page): follow it.
      stable.append(i, kpage);
      return;
    }
    const checksum = this.memory.checksumFrame(m as Mfn) >>> 0;
    this.hashes++;
    if (checksum !== items.checksum[i]) {
      items.checksum[i] = checksum;
      return;
    }
    const gfn = g as Gfn;
    if (this.opts.use_zero_pages === 1 && checksum === this.zeroChecksum) {
      if (host.merge(slot.dom, gfn, this.zeroMfn as Mfn)) {
        items.flags[i]! |= ZERO;
        slot.zeroPages++;
        this.ksmZeroPages++;
        return;
      }
    }
    const nid = this.opts.merge_across_nodes === 1 ? 0 : host.nodeOf(m as Mfn);
    const found = stable.search(nid, m, this.nowNs);
    if (found !== NIL) {
      if (host.merge(slot.dom, gfn, stable.kpfn[found] as Mfn)) stable.append(i, found);
      return;
    }
    const key = this.key;
    key.mfn = m;
    key.checksum = checksum;
    const tree = this.unstable.search(nid, key);
    if (tree === ABORTED) return;
    if (tree === NIL) {
      this.unstable.insertAtSearchPath(nid, i);
      items.flags[i]! |= UNSTABLE | this.parityBit();
      this.pagesUnshared++;
      return;
    }
    const treeMfn = key.treeMfn;
    if (this.opts.merge_across_nodes === 0 && host.nodeOf(treeMfn as Mfn) !== nid) return;
    if (!host.merge(slot.dom, gfn, treeMfn as Mfn)) return;
    this.unstable.erase(nid, tree);
    items.flags[tree]! &= ~(UNSTABLE | PARITY);
    this.pagesUnshared--;
    const node = stable.insert(treeMfn, nid, checksum, this.nowNs);
    stable.append(tree, node);
    stable.append(i, node);
  }

  /** The full scan is over: count it and empty the unstable trees (the next scan rebuilds them). */
  private endFullScan(): void {
    this.fullScans++;
    this.generation++;
    for (let r = 0; r < this.unstable.roots.length; r++) this.unstable.reset(r);
    this.curPos = -1;
    this.curGfn = 0;
  }

  private parityBit(): number {
    return (this.generation & 1) === 0 ? 0 : PARITY;
  }

  /** Takes item `i` out of the unstable tree of a previous generation (already emptied). */
  private leaveUnstable(i: number, f: number): void {
    // An item is visited once per full scan, so it cannot be in the tree of this one.
    if ((f & PARITY) === this.parityBit()) throw new InvariantError(`ksm: item ${i} scanned twice in one full scan`);
    this.items.flags[i] = f & ~(UNSTABLE | PARITY);
    this.pagesUnshared--;
  }

  private newItem(slot: DomainSlot, i: number): void {
    const items = this.items;
    items.flags[i]! |= ITEM;
    items.age[i] = 0;
    items.skips[i] = 0;
    items.checksum[i] = 0;
    items.left[i] = NIL;
    items.right[i] = NIL;
    slot.rmapItems++;
    this.rmapItems++;
  }

  /** Frees item `i`: it leaves its stable node or unstable tree (a current tree is rebuilt later). */
  private freeItem(slot: DomainSlot, i: number): void {
    const items = this.items;
    if ((items.flags[i]! & STABLE) !== 0) this.stable.detach(i);
    const f = items.flags[i]!;
    if ((f & UNSTABLE) !== 0) {
      this.pagesUnshared--;
      if ((f & PARITY) === this.parityBit()) this.unstableDirty = true;
    }
    items.flags[i] = f & (MERGEABLE | ZERO);
    items.age[i] = 0;
    items.skips[i] = 0;
    items.checksum[i] = 0;
    slot.rmapItems--;
    this.rmapItems--;
  }

  /** smart_scan skipped item `i`: it leaves whatever tree it was in. */
  private skipItem(i: number): void {
    this.pagesSkipped++;
    if ((this.items.flags[i]! & STABLE) !== 0) this.stable.detach(i);
    const f = this.items.flags[i]!;
    if ((f & UNSTABLE) !== 0) this.leaveUnstable(i, f);
  }

  private dropZero(slot: DomainSlot, i: number): void {
    this.items.flags[i]! &= ~ZERO;
    slot.zeroPages--;
    this.ksmZeroPages--;
  }

  /** Rebuilds the unstable trees without the items freed from them, if any were. */
  private cleanUnstable(): void {
    if (!this.unstableDirty) return;
    this.unstableDirty = false;
    const flags = this.items.flags;
    const want = UNSTABLE | this.parityBit();
    for (let r = 0; r < this.unstable.roots.length; r++) {
      this.unstable.rebuild(r, (i) => (flags[i]! & (UNSTABLE | PARITY)) === want);
    }
  }

  /**
   * Adds to `count` the pages of [from, to) of `slot` that {@link unmergePage} would unmerge: those
   * on a KSM page, and those KSM merged onto the zero frame.
   */
  private countUnmerge(count: UnmergeCount, slot: DomainSlot, from: number, to: number): void {
    const table = slot.table;
    const flags = this.items.flags;
    const kpages = this.stable.frames;
    for (let g = from; g < to; g++) {
      if (table.type(g as Gfn) !== RAM_SHARED) continue;
      const m = table.mfn(g as Gfn);
      if (m === this.zeroMfn) {
        if ((flags[slot.base + g]! & ZERO) !== 0) count.addZero();
      } else if (kpages.get(m) >= 0) {
        count.addShared(m);
      }
    }
  }

  /** Unmerges pages [from, to) of `slot`, or throws ENOMEM (named `op`) having changed nothing. */
  private unmergeRange(host: DedupHost, slot: DomainSlot, from: number, to: number, op: string): void {
    const count = new UnmergeCount(to - from);
    this.countUnmerge(count, slot, from, to);
    count.check(op, host);
    for (let g = from; g < to; g++) this.unmergePage(slot, g);
  }

  /**
   * break_ksm on page `g` of `slot`: a page on a KSM page, or merged onto the zero frame by KSM,
   * gets a frame of its own. The frames were counted beforehand: a missing one is a bug.
   */
  private unmergePage(slot: DomainSlot, g: number): void {
    const host = this.host!;
    const gfn = g as Gfn;
    if (slot.table.type(gfn) !== RAM_SHARED) return;
    const m = slot.table.mfn(gfn);
    const i = slot.base + g;
    const onZero = m === this.zeroMfn && (this.items.flags[i]! & ZERO) !== 0;
    if (!onZero && this.stable.frames.get(m) < 0) return;
    if (!host.unmerge(slot.dom, gfn)) {
      throw new InvariantError(`ksm: no free frame to unmerge dom ${slot.dom} gfn ${g}, though the frames needed were counted free`);
    }
    // A host with the zeroPageUnmapped hook has counted it out already, at the copy-on-write.
    if (onZero && (this.items.flags[i]! & ZERO) !== 0) this.dropZero(slot, i);
  }

  private clearMergeable(slot: DomainSlot, from: number, to: number): void {
    const flags = this.items.flags;
    for (let g = from; g < to; g++) {
      const i = slot.base + g;
      if ((flags[i]! & MERGEABLE) === 0) continue;
      flags[i]! &= ~MERGEABLE;
      slot.mergeable--;
      this.mergeablePages--;
    }
  }

  /**
   * The pages run = 2 unmerges, counted (see {@link countUnmerge}) over every domain.
   */
  private countUnmergeAll(): UnmergeCount {
    let pages = 0;
    for (const slot of this.scanList) pages += slot.size;
    const count = new UnmergeCount(pages);
    for (const slot of this.scanList) this.countUnmerge(count, slot, 0, slot.size);
    return count;
  }

  /**
   * run = 2 (unmerge_and_remove_all_rmap_items): unmerges every page of every domain that maps a
   * KSM page or that KSM merged onto the zero frame, frees every item, forgets every KSM page and
   * resets full_scans; the scan restarts from the first domain. The caller checked that enough
   * frames are free.
   */
  private unmergeAll(): void {
    if (this.host === undefined) return;
    const flags = this.items.flags;
    for (const slot of this.scanList) {
      for (let g = 0; g < slot.size; g++) {
        const i = slot.base + g;
        this.unmergePage(slot, g);
        if ((flags[i]! & ZERO) !== 0) this.dropZero(slot, i); // no longer on the zero frame
        if ((flags[i]! & ITEM) !== 0) this.freeItem(slot, i);
      }
    }
    this.stable.removeAll();
    this.fullScans = 0;
    // Every item was freed: the unstable trees restart empty, as does the scan.
    this.unstableDirty = false;
    this.generation++;
    for (let r = 0; r < this.unstable.roots.length; r++) this.unstable.reset(r);
    this.curPos = -1;
    this.curGfn = 0;
  }

  private attached(op: string): DedupHost {
    const host = this.host;
    if (host === undefined) throw new InvariantError(`ksm: ${op} before attach`);
    return host;
  }

  /** The slot of `dom`, made (and queued for scanning) on first use. */
  private slotFor(host: DedupHost, dom: DomId): DomainSlot {
    let slot = this.slots.get(dom);
    if (slot !== undefined) return slot;
    const table = host.p2m.table(dom);
    invariant(table !== undefined, `ksm: dom ${dom} has no p2m table`);
    slot = new DomainSlot(dom, table, table.size);
    if (this.items.allocRange(slot)) {
      this.unstable.left = this.items.left;
      this.unstable.right = this.items.right;
    }
    this.slots.set(dom, slot);
    // __ksm_enter: just behind the scanning cursor (scanned from the next full scan, before the
    // domain being scanned); between full scans the cursor is the list head: at the end.
    if (this.curPos < 0) this.scanList.push(slot);
    else this.scanList.splice(this.curPos++, 0, slot);
    return slot;
  }
}
