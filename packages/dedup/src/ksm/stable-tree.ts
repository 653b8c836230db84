import { FrameFlags, P2mType, type DedupHost, type Gfn, type MachineMemory, type Mfn } from '@pagevisor/types';
import { ContentTreap, mixPriority, NIL, type TreapKey } from './content-treap.js';
import { FrameIndex } from './frame-index.js';
import { ItemFlags, type RmapItems } from './rmap-items.js';

/** What a stable node is. */
export const NodeKind = {
  /** Unused slot of the pool. */
  free: 0,
  /** A KSM page, itself a node of a stable tree. */
  regular: 1,
  /** A stable_node_chain: a node of a stable tree whose KSM pages (dups) share one content. */
  chain: 2,
  /** A stable_node_dup: a KSM page listed by a chain, not itself in a tree. */
  dup: 3,
} as const;

/** "No previous item" in an item's checksum word while it hangs off a stable node. */
const NO_PREV = 0xffffffff;

/**
 * Orders a frame against stable nodes by content: checksum first, then memcmp (a chain shows the
 * content of its first dup). Most comparisons end on the checksums, with no page compare.
 */
class StableKey implements TreapKey {
  mfn = 0;
  checksum = 0;
  constructor(private readonly tree: StableTree) {}
  compareTo(node: number): number {
    return this.tree.compareWith(this.mfn, this.checksum, node);
  }
}

/**
 * The stable trees of KSM (one, or one per NUMA node without merge_across_nodes): write-protected
 * KSM pages ordered by content — by checksum, then memcmp, a total order on contents that spares
 * most page compares — with the rmap items of the pages that map each one, and the
 * stable_node_chains that max_page_sharing calls for. Nodes are numbers into a pool of typed
 * arrays; a node's items form a doubly linked list threaded through the item arrays.
 *
 * A KSM page whose frame goes away (freed, or written by its last sharer) is removed at once with
 * all its items ({@link removeNode}): nothing stale stays in a tree, so a search never meets a
 * frame that may have been reused.
 */
export class StableTree {
  /** Frame of each KSM page (-1 for a chain). */
  kpfn = new Int32Array(0);
  /** Items hanging off each node (rmap_hlist_len). */
  count = new Int32Array(0);
  /** {@link NodeKind} of each node. */
  kind = new Uint8Array(0);
  /** Tree (NUMA node, or 0) of each node. */
  nid = new Uint8Array(0);
  /** First item of a KSM page's list; first dup of a chain. */
  head = new Int32Array(0);
  /** Next and previous dup in a chain's list; chain of a dup. */
  dupNext = new Int32Array(0);
  dupPrev = new Int32Array(0);
  chainOf = new Int32Array(0);
  /** Checksum of a KSM page's (or chain's) content: its key in the tree, and the old checksum its items get back. */
  checksum = new Uint32Array(0);
  /** Simulated time of each chain's last pruning (chain_prune_time); chains are few. */
  private readonly pruneNs = new Map<number, number>();
  /** The trees over the nodes. */
  readonly treap: ContentTreap;
  /** KSM page frame -> node. */
  readonly frames = new FrameIndex();

  /** KSM pages with at least one item (ksm_pages_shared). */
  pagesShared = 0;
  /** Items beyond the first of each KSM page (ksm_pages_sharing). */
  pagesSharing = 0;
  /** stable_node_chains. */
  chains = 0;
  /** stable_node_dups: KSM pages listed by chains. */
  dups = 0;
  /** max_page_sharing. */
  maxPageSharing: number;
  /** stable_node_chains_prune_millisecs. */
  pruneMillisecs: number;
  /** Nodes compared with by {@link search} (the treap counts its own searches). */
  comparisons = 0;

  private freeIds = new Int32Array(16);
  private freeTop = 0;
  private highWater = 0;
  private priorities = 0;
  private collapsed = false;
  private readonly key = new StableKey(this);

  constructor(
    /** Machine RAM, for comparing contents. */
    readonly memory: MachineMemory,
    private readonly items: RmapItems,
    roots: number,
    maxPageSharing: number,
    pruneMillisecs: number,
  ) {
    this.maxPageSharing = maxPageSharing;
    this.pruneMillisecs = pruneMillisecs;
    this.treap = new ContentTreap(roots, {
      left: new Int32Array(0),
      right: new Int32Array(0),
      parent: new Int32Array(0),
      prio: new Uint32Array(0),
    });
    this.grow(16);
  }

  /** Bytes of the pool, the frame index and the trees' own buffers. */
  get bytes(): number {
    const t = this.treap;
    return (
      this.kpfn.byteLength +
      this.count.byteLength +
      this.kind.byteLength +
      this.nid.byteLength +
      this.head.byteLength +
      this.dupNext.byteLength +
      this.dupPrev.byteLength +
      this.chainOf.byteLength +
      this.checksum.byteLength +
      this.pruneNs.size * 16 +
      t.left.byteLength +
      t.right.byteLength +
      t.parent!.byteLength +
      t.prio!.byteLength +
      this.freeIds.byteLength +
      this.frames.bytes +
      t.ownBytes
    );
  }

  /** Nodes that are KSM pages (regular nodes and dups). */
  get kpages(): number {
    return this.frames.size;
  }

  /** Frame holding the content of `node`: its own, or a chain's first dup's. */
  contentFrame(node: number): number {
    return this.kind[node] === NodeKind.chain ? this.kpfn[this.head[node]!]! : this.kpfn[node]!;
  }

  /** True when `node` may take one more mapping (is_page_sharing_candidate). */
  isCandidate(node: number): boolean {
    const n = this.count[node]!;
    return n > 0 && n < this.maxPageSharing;
  }

  /**
   * Orders content (`mfn`, whose checksum is `checksum`) against `node`: -1, 0 or 1.
   * Checksums first; equal checksums are settled by a page compare.
   */
  compareWith(mfn: number, checksum: number, node: number): number {
    const c = this.checksum[node]!;
    if (checksum !== c) return checksum < c ? -1 : 1;
    const m = this.memory.compareFrames(mfn as Mfn, this.contentFrame(node) as Mfn);
    return m < 0 ? -1 : m > 0 ? 1 : 0;
  }

  /**
   * stable_tree_search: a KSM page of tree `r` with the content of frame `mfn` (checksum
   * `checksum`) that can take one more mapping, or NIL (no such content, or every KSM page of it
   * is full). Chains met on the way are pruned (chain_prune) when `nowNs` is past their time.
   */
  search(r: number, mfn: number, checksum: number, nowNs: number): number {
    const left = this.treap.left;
    const right = this.treap.right;
    let n = this.treap.roots[r]!;
    while (n !== NIL) {
      let dup: number;
      if (this.kind[n] === NodeKind.chain) {
        dup = this.chainPrune(r, n, nowNs);
        if (this.collapsed) n = dup;
      } else {
        dup = this.isCandidate(n) ? n : NIL;
      }
      const c = this.compareWith(mfn, checksum, n);
      this.comparisons++;
      if (c === 0) return dup;
      n = c < 0 ? left[n]! : right[n]!;
    }
    return NIL;
  }

  /**
   * stable_tree_insert: makes frame `kpfn` (content checksum `checksum`) a KSM page of tree `r`.
   * When the tree already holds that content, both become dups of one chain (made now if needed).
   * Returns the new node.
   */
  insert(kpfn: number, r: number, checksum: number, nowNs: number): number {
    this.key.mfn = kpfn;
    this.key.checksum = checksum;
    const same = this.treap.search(r, this.key);
    const node = this.alloc(NodeKind.regular, r);
    this.kpfn[node] = kpfn;
    this.checksum[node] = checksum;
    if (same === NIL) {
      this.treap.prio![node] = mixPriority(++this.priorities);
      this.treap.insertAtSearchPath(r, node);
    } else {
      let chain = same;
      if (this.kind[same] !== NodeKind.chain) {
        chain = this.alloc(NodeKind.chain, r);
        this.kpfn[chain] = -1;
        this.checksum[chain] = checksum;
        this.pruneNs.set(chain, nowNs);
        this.treap.replace(r, same, chain);
        this.chains++;
        this.addDup(chain, same);
      }
      this.addDup(chain, node);
    }
    this.frames.set(kpfn, node);
    return node;
  }

  /** stable_tree_append: hangs item `i` off KSM page `node`. */
  append(i: number, node: number): void {
    const items = this.items;
    const first = this.head[node]!;
    items.left[i] = node;
    items.right[i] = first;
    items.checksum[i] = NO_PREV;
    if (first !== NIL) items.checksum[first] = i;
    this.head[node] = i;
    items.flags[i]! |= ItemFlags.stable;
    if (this.count[node]! > 0) this.pagesSharing++;
    else this.pagesShared++;
    this.count[node]!++;
    items.slotOf(i).mergingPages++;
  }

  /** Unhooks item `i` from its KSM page; it gets back the page's checksum as its old checksum. */
  detach(i: number): void {
    const items = this.items;
    const node = items.left[i]!;
    const next = items.right[i]!;
    const prev = items.checksum[i]! | 0;
    if (prev !== NIL) items.right[prev] = next;
    else this.head[node] = next;
    if (next !== NIL) items.checksum[next] = prev >>> 0;
    if (--this.count[node]! > 0) this.pagesSharing--;
    else this.pagesShared--;
    items.slotOf(i).mergingPages--;
    items.flags[i]! &= ~ItemFlags.stable;
    items.left[i] = NIL;
    items.right[i] = NIL;
    items.checksum[i] = this.checksum[node]!;
  }

  /**
   * remove_node_from_stable_tree: the frame of KSM page `node` is gone. Its items are unhooked
   * (counters corrected now), and the node leaves its tree or chain; a chain left empty goes too.
   */
  removeNode(node: number): void {
    while (this.head[node] !== NIL) this.detach(this.head[node]!);
    const r = this.nid[node]!;
    if (this.kind[node] === NodeKind.dup) {
      const chain = this.chainOf[node]!;
      this.unlinkDup(chain, node);
      if (this.head[chain] === NIL) {
        this.treap.erase(r, chain);
        this.chains--;
        this.release(chain);
      }
    } else {
      this.treap.erase(r, node);
    }
    this.frames.delete(this.kpfn[node]!);
    this.release(node);
  }

  /** Removes every KSM page (their items first): the stable trees end empty. */
  removeAll(): void {
    for (let n = 0; n < this.highWater; n++) {
      const k = this.kind[n];
      if (k === NodeKind.regular || k === NodeKind.dup) this.removeNode(n);
    }
  }

  /**
   * Broken invariants, in words: trees in content order and balanced as treaps, chains and dups
   * well formed, counters equal to recomputed values, every KSM page a live shared frame indexed
   * by the frame index, in the tree of its NUMA node when `perNumaNode`, its item list consistent
   * with its count, and no more of its items mapping it than the host's reverse map holds.
   */
  audit(host: DedupHost, perNumaNode: boolean): string[] {
    const problems: string[] = [];
    const items = this.items;
    const report = (msg: string): void => {
      if (problems.length < 50) problems.push(`stable tree: ${msg}`);
    };
    const compare = (a: number, b: number): number =>
      this.checksum[a] !== this.checksum[b]
        ? this.checksum[a]! - this.checksum[b]!
        : this.memory.compareFrames(this.contentFrame(a) as Mfn, this.contentFrame(b) as Mfn);
    const inTree = new Uint8Array(this.highWater);
    for (let r = 0; r < this.treap.roots.length; r++) {
      for (const p of this.treap.check(r, compare)) report(p);
      this.treap.forEachInOrder(r, (n) => {
        inTree[n] = 1;
        if (this.nid[n] !== r) report(`node ${n} in tree ${r} says nid ${this.nid[n]}`);
        if (this.kind[n] !== NodeKind.regular && this.kind[n] !== NodeKind.chain) report(`node ${n} of kind ${this.kind[n]} in tree ${r}`);
      });
    }
    let shared = 0;
    let sharing = 0;
    let chains = 0;
    let dups = 0;
    let kpages = 0;
    for (let n = 0; n < this.highWater; n++) {
      const k = this.kind[n];
      if (k === NodeKind.free) continue;
      if ((k === NodeKind.regular || k === NodeKind.chain) && inTree[n] !== 1) report(`node ${n} (kind ${k}) is not in its tree`);
      if (k === NodeKind.chain) {
        chains++;
        if (this.head[n] === NIL) report(`chain ${n} has no dup`);
        let prev = NIL;
        for (let d = this.head[n]!; d !== NIL; d = this.dupNext[d]!) {
          if (this.kind[d] !== NodeKind.dup || this.chainOf[d] !== n || this.dupPrev[d] !== prev) {
            report(`chain ${n}: dup ${d} is kind ${this.kind[d]}, chain ${this.chainOf[d]}, prev ${this.dupPrev[d]}`);
            break;
          }
          if (this.nid[d] !== this.nid[n]) report(`chain ${n}: dup ${d} in nid ${this.nid[d]}, chain in ${this.nid[n]}`);
          if (this.memory.compareFrames(this.kpfn[d] as Mfn, this.contentFrame(n) as Mfn) !== 0) report(`chain ${n}: dup ${d} differs in content`);
          prev = d;
        }
        continue;
      }
      if (k === NodeKind.dup) dups++;
      kpages++;
      const mfn = this.kpfn[n]!;
      if ((this.memory.hashFrame(mfn as Mfn) >>> 0) !== this.checksum[n]) report(`KSM page ${n}: mfn ${mfn} content does not hash to its checksum`);
      if (k === NodeKind.dup && this.checksum[n] !== this.checksum[this.chainOf[n]!]) report(`dup ${n}: checksum differs from its chain's`);
      if (this.frames.get(mfn) !== n) report(`KSM page ${n} (mfn ${mfn}) not in the frame index`);
      if (host.frames.isFree(mfn as Mfn)) report(`KSM page ${n}: mfn ${mfn} is free`);
      else if ((host.frames.flags(mfn as Mfn) & FrameFlags.shared) === 0) report(`KSM page ${n}: mfn ${mfn} is not shared`);
      if ((perNumaNode ? host.nodeOf(mfn as Mfn) : 0) !== this.nid[n]) {
        report(`KSM page ${n}: mfn ${mfn} on NUMA node ${host.nodeOf(mfn as Mfn)} but in tree ${this.nid[n]}`);
      }
      let len = 0;
      let mapping = 0;
      let prev = NIL;
      for (let i = this.head[n]!; i !== NIL && len <= this.count[n]!; i = items.right[i]!) {
        len++;
        if ((items.flags[i]! & ItemFlags.stable) === 0 || items.left[i] !== n || (items.checksum[i]! | 0) !== prev) {
          report(`KSM page ${n}: item ${i} has flags ${items.flags[i]}, node ${items.left[i]}, prev ${items.checksum[i]! | 0}`);
          break;
        }
        const slot = items.slotOf(i);
        const gfn = (i - slot.base) as Gfn;
        if (slot.table.type(gfn) === P2mType.ram_shared && slot.table.mfn(gfn) === mfn) mapping++;
        prev = i;
      }
      if (len !== this.count[n]) report(`KSM page ${n}: ${len} items listed, count ${this.count[n]}`);
      const rmap = host.p2m.rmap.count(mfn as Mfn);
      if (mapping > rmap) report(`KSM page ${n}: ${mapping} of its items map mfn ${mfn}, reverse map holds ${rmap}`);
      if (len > 0) {
        shared++;
        sharing += len - 1;
      }
    }
    if (kpages !== this.frames.size) report(`${kpages} KSM pages, frame index holds ${this.frames.size}`);
    if (shared !== this.pagesShared) report(`pages_shared ${this.pagesShared}, recomputed ${shared}`);
    if (sharing !== this.pagesSharing) report(`pages_sharing ${this.pagesSharing}, recomputed ${sharing}`);
    if (chains !== this.chains) report(`stable_node_chains ${this.chains}, recomputed ${chains}`);
    if (dups !== this.dups) report(`stable_node_dups ${this.dups}, recomputed ${dups}`);
    return problems;
  }

  /**
   * chain_prune / stable_node_dup: the dup of `chain` to merge into — the first that can take one
   * more mapping, or, when the chain is due for pruning, the fullest such. Moves it to the head of
   * the chain when it can take yet another; at pruning time, a chain of a single usable dup
   * collapses into that dup (sets `collapsed`, the dup now stands in the tree where the chain was).
   */
  private chainPrune(r: number, chain: number, nowNs: number): number {
    this.collapsed = false;
    const prune = nowNs >= this.pruneNs.get(chain)! + this.pruneMillisecs * 1e6;
    if (prune) this.pruneNs.set(chain, nowNs);
    let found = NIL;
    let nr = 0;
    for (let d = this.head[chain]!; d !== NIL; d = this.dupNext[d]!) {
      nr++;
      if (this.isCandidate(d) && (found === NIL || this.count[d]! > this.count[found]!)) {
        found = d;
        if (!prune) break;
      }
    }
    if (found === NIL) return NIL;
    if (prune && nr === 1) {
      this.unlinkDup(chain, found);
      this.kind[found] = NodeKind.regular;
      this.chainOf[found] = NIL;
      this.treap.replace(r, chain, found);
      this.chains--;
      this.release(chain);
      this.collapsed = true;
    } else if (this.head[chain] !== found && this.count[found]! + 1 < this.maxPageSharing) {
      this.unlinkDup(chain, found);
      this.addDup(chain, found);
    }
    return found;
  }

  private addDup(chain: number, d: number): void {
    const first = this.head[chain]!;
    this.kind[d] = NodeKind.dup;
    this.chainOf[d] = chain;
    this.dupPrev[d] = NIL;
    this.dupNext[d] = first;
    if (first !== NIL) this.dupPrev[first] = d;
    this.head[chain] = d;
    this.dups++;
  }

  private unlinkDup(chain: number, d: number): void {
    const prev = this.dupPrev[d]!;
    const next = this.dupNext[d]!;
    if (prev !== NIL) this.dupNext[prev] = next;
    else this.head[chain] = next;
    if (next !== NIL) this.dupPrev[next] = prev;
    this.dupNext[d] = NIL;
    this.dupPrev[d] = NIL;
    this.dups--;
  }

  private alloc(kind: number, r: number): number {
    let n: number;
    if (this.freeTop > 0) n = this.freeIds[--this.freeTop]!;
    else {
      if (this.highWater === this.kind.length) this.grow(this.kind.length * 2);
      n = this.highWater++;
    }
    this.kind[n] = kind;
    this.nid[n] = r;
    this.count[n] = 0;
    this.head[n] = NIL;
    this.dupNext[n] = NIL;
    this.dupPrev[n] = NIL;
    this.chainOf[n] = NIL;
    this.treap.left[n] = NIL;
    this.treap.right[n] = NIL;
    this.treap.parent![n] = NIL;
    return n;
  }

  private release(n: number): void {
    if (this.kind[n] === NodeKind.chain) this.pruneNs.delete(n);
    this.kind[n] = NodeKind.free;
    this.kpfn[n] = -1;
    if (this.freeTop === this.freeIds.length) {
      const f = new Int32Array(this.freeIds.length * 2);
      f.set(this.freeIds);
      this.freeIds = f;
    }
    this.freeIds[this.freeTop++] = n;
  }

  private grow(capacity: number): void {
    const i32 = (a: Int32Array): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(capacity).fill(NIL);
      b.set(a);
      return b;
    };
    this.kpfn = i32(this.kpfn);
    this.count = i32(this.count);
    this.head = i32(this.head);
    this.dupNext = i32(this.dupNext);
    this.dupPrev = i32(this.dupPrev);
    this.chainOf = i32(this.chainOf);
    const kind = new Uint8Array(capacity);
    kind.set(this.kind);
    this.kind = kind;
    const nid = new Uint8Array(capacity);
    nid.set(this.nid);
    this.nid = nid;
    const checksum = new Uint32Array(capacity);
    checksum.set(this.checksum);
    this.checksum = checksum;
    const t = this.treap;
    t.left = i32(t.left);
    t.right = i32(t.right);
    t.parent = i32(t.parent!);
    const prio = new Uint32Array(capacity);
    prio.set(t.prio!);
    t.prio = prio;
  }
}
