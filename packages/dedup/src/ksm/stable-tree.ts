import { FrameFlags, P2mType, type DedupHost, type Gfn, type MachineMemory, type Mfn } from '@pagevisor/types';
import { ABORTED, NIL, SEARCH_ABORT, type TreapKey } from './content-treap.js';
import { RbTree } from './rb-tree.js';
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
 * Orders a frame against stable nodes by content, memcmp as the kernel's memcmp_pages (a chain
 * shows the content of its first live dup). For stable_tree_insert's walk: a node met stale is
 * pruned first (a chain's stale dups too), and when that changed the tree the walk stops
 * (SEARCH_ABORT) to start again from the root.
 */
class StableKey implements TreapKey {
  mfn = 0;
  root = 0;
  nowNs = 0;
  constructor(private readonly tree: StableTree) {}
  compareTo(node: number): number {
    if (!this.tree.visit(this.root, node, this.nowNs, false)) return SEARCH_ABORT;
    return this.tree.compareWith(this.mfn, node);
  }
}

/**
 * The stable trees of KSM (one, or one per NUMA node without merge_across_nodes): write-protected
 * KSM pages ordered by content (memcmp) in red-black trees of the very shapes Linux's give them
 * ({@link RbTree}), with the rmap items of the pages that map each one, and the
 * stable_node_chains that max_page_sharing calls for. Nodes are numbers into a pool of typed
 * arrays; a node's items form a doubly linked list threaded through the item arrays.
 *
 * A KSM page whose frame goes away (freed, or written by its last sharer) leaves a stale node
 * ({@link markStale}): out of the frame index at once (the frame may be reused), but in its tree
 * or chain with its items, and in the counters, until pruned ({@link prune}, Linux's
 * remove_node_from_stable_tree) when an item of it leaves ({@link detach}) or a walk of the tree
 * meets it ({@link search}, {@link insert}: ksm_get_folio finding the node stale). No content is
 * ever compared with a stale node's frame. A chain whose dups are all pruned stays, empty, until
 * a walk meets it.
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
  /** Checksum of a KSM page's (or chain's) content: the old checksum its items get back when they leave it. */
  checksum = new Uint32Array(0);
  /** 1 for a KSM page whose frame has gone (a stale stable node, not yet pruned). */
  stale = new Uint8Array(0);
  /** Simulated time of each chain's last pruning (chain_prune_time); chains are few. */
  private readonly pruneNs = new Map<number, number>();
  /** The trees over the nodes. */
  readonly tree: RbTree;
  /** KSM page frame -> node. */
  readonly frames = new FrameIndex();

  /** KSM pages with at least one item, stale ones included until pruned (ksm_pages_shared). */
  pagesShared = 0;
  /** Items beyond the first of each KSM page (ksm_pages_sharing). */
  pagesSharing = 0;
  /** stable_node_chains. */
  chains = 0;
  /** stable_node_dups: KSM pages listed by chains, stale ones included until pruned. */
  dups = 0;
  /** max_page_sharing. */
  maxPageSharing: number;
  /** stable_node_chains_prune_millisecs. */
  pruneMillisecs: number;
  /** Nodes compared with by {@link search} (the tree counts its own searches, for inserts). */
  comparisons = 0;

  private freeIds = new Int32Array(16);
  private freeTop = 0;
  private highWater = 0;
  /** Set by {@link stableNodeDup}: the chain it was given was collapsed into the dup returned. */
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
    this.tree = new RbTree(roots, {
      left: new Int32Array(0),
      right: new Int32Array(0),
      parent: new Int32Array(0),
      red: new Uint8Array(0),
    });
    this.grow(16);
  }

  /** Bytes of the pool, the frame index and the trees' own buffers. */
  get bytes(): number {
    const t = this.tree;
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
      this.stale.byteLength +
      this.pruneNs.size * 16 +
      t.left.byteLength +
      t.right.byteLength +
      t.parent.byteLength +
      t.red.byteLength +
      this.freeIds.byteLength +
      this.frames.bytes +
      t.ownBytes
    );
  }

  /** Nodes that are live KSM pages (regular nodes and dups, stale ones not). */
  get kpages(): number {
    return this.frames.size;
  }

  /**
   * Frame holding the content of `node`: its own, or a chain's first live dup's; -1 when that is
   * unknown (a stale node, a chain with no live dup).
   */
  contentFrame(node: number): number {
    if (this.kind[node] !== NodeKind.chain) return this.stale[node] === 1 ? -1 : this.kpfn[node]!;
    for (let d = this.head[node]!; d !== NIL; d = this.dupNext[d]!) if (this.stale[d] === 0) return this.kpfn[d]!;
    return -1;
  }


  /** True when `node` may take one more mapping (is_page_sharing_candidate). */
  isCandidate(node: number): boolean {
    const n = this.count[node]!;
    return n > 0 && n < this.maxPageSharing;
  }

  /** Orders the content of frame `mfn` against live `node`'s: -1, 0 or 1, as memcmp_pages. */
  compareWith(mfn: number, node: number): number {
    const m = this.memory.compareFrames(mfn as Mfn, this.contentFrame(node) as Mfn);
    return m < 0 ? -1 : m > 0 ? 1 : 0;
  }

  /**
   * stable_tree_search: a KSM page of tree `r` with the content of frame `mfn` that can take one
   * more mapping, or NIL (no such content, or every KSM page of it is full). Each node met is checked first, as chain_prune does: a stale KSM page is pruned
   * and the search starts again from the root; a chain's dups are walked (see
   * {@link stableNodeDup}, pruning due when `nowNs` is past the chain's time).
   */
  search(r: number, mfn: number, nowNs: number): number {
    for (;;) {
      let n = this.tree.roots[r]!;
      let again = false;
      while (n !== NIL) {
        let dup = n;
        if (this.kind[n] === NodeKind.chain) {
          dup = this.stableNodeDup(r, n, nowNs, true);
          if (dup === NIL) {
            again = true; // the chain had no live dup: freed, the tree changed
            break;
          }
          if (this.collapsed) n = dup;
        } else if (this.stale[n] === 1) {
          this.prune(n);
          again = true;
          break;
        }
        const c = this.compareWith(mfn, n);
        this.comparisons++;
        if (c === 0) return this.isCandidate(dup) ? dup : NIL;
        n = c < 0 ? this.tree.left[n]! : this.tree.right[n]!;
      }
      if (!again) return NIL;
    }
  }

  /**
   * stable_tree_insert's check of tree node `node` of tree `r` before comparing with it (chain()):
   * a stale KSM page is pruned, a chain's dups walked without the time-based pruning. False when
   * that changed the tree (a node pruned, a chain freed or collapsed): walk again from the root.
   */
  visit(r: number, node: number, nowNs: number, prune: boolean): boolean {
    if (this.kind[node] === NodeKind.chain) {
      const dup = this.stableNodeDup(r, node, nowNs, prune);
      return dup !== NIL && !this.collapsed;
    }
    if (this.stale[node] === 0) return true;
    this.prune(node);
    return false;
  }

  /**
   * stable_tree_insert: makes frame `kpfn` (content checksum `checksum`) a KSM page of tree `r`.
   * When the tree already holds that content, both become dups of one chain (made now if needed).
   * Returns the new node.
   */
  insert(kpfn: number, r: number, checksum: number, nowNs: number): number {
    this.key.mfn = kpfn;
    this.key.root = r;
    this.key.nowNs = nowNs;
    let same = this.tree.search(r, this.key);
    while (same === ABORTED) same = this.tree.search(r, this.key);
    const node = this.alloc(NodeKind.regular, r);
    this.kpfn[node] = kpfn;
    this.checksum[node] = checksum;
    if (same === NIL) {
      this.tree.insertAtSearchPath(r, node);
    } else {
      let chain = same;
      if (this.kind[same] !== NodeKind.chain) {
        chain = this.alloc(NodeKind.chain, r);
        this.kpfn[chain] = -1;
        this.checksum[chain] = checksum;
        this.pruneNs.set(chain, nowNs);
        this.tree.replace(r, same, chain);
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

  /**
   * remove_rmap_item_from_tree for item `i` of a KSM page: it leaves the page, and gets back the
   * page's checksum as its old checksum. When the page is stale, the whole node is pruned, every
   * item with it (ksm_get_folio failing, then remove_node_from_stable_tree).
   */
  detach(i: number): void {
    const node = this.items.left[i]!;
    if (this.stale[node] === 1) this.prune(node);
    else this.unhook(i);
  }

  /** Unhooks item `i` from its KSM page; it gets back the page's checksum as its old checksum. */
  private unhook(i: number): void {
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
   * The frame of KSM page `node` is gone (freed, or about to be written by its last sharer): it
   * is no longer a KSM page (out of the frame index), but the node stays, stale, with its items,
   * until pruned.
   */
  markStale(node: number): void {
    this.frames.delete(this.kpfn[node]!);
    this.stale[node] = 1;
  }

  /**
   * remove_node_from_stable_tree: KSM page `node` goes. Its items are unhooked (counters
   * corrected now), and the node leaves its tree or its chain; a chain left empty stays (it goes
   * when a walk meets it, or with {@link removeAll}).
   */
  prune(node: number): void {
    while (this.head[node] !== NIL) this.unhook(this.head[node]!);
    if (this.kind[node] === NodeKind.dup) this.unlinkDup(this.chainOf[node]!, node);
    else this.tree.erase(this.nid[node]!, node);
    if (this.stale[node] === 0) this.frames.delete(this.kpfn[node]!);
    this.release(node);
  }

  /** Removes every KSM page, stale or not (their items first), and every chain: the stable trees end empty. */
  removeAll(): void {
    for (let n = 0; n < this.highWater; n++) {
      const k = this.kind[n];
      if (k === NodeKind.regular || k === NodeKind.dup) this.prune(n);
    }
    for (let n = 0; n < this.highWater; n++) if (this.kind[n] === NodeKind.chain) this.freeChain(n);
  }

  /**
   * remove_all_stable_nodes, as a change of max_page_sharing or merge_across_nodes calls it: in
   * each tree, the root again and again goes if it can. A stale KSM page is pruned; a chain's
   * dups are gone through in order, the stale ones pruned, and the chain freed once none is left;
   * a live KSM page (here always mapped) is busy, and that tree stays as it is from there on. True
   * when a busy KSM page was met (the knob is then EBUSY, though what went before it went).
   */
  removeAllUnlessBusy(): boolean {
    let busy = false;
    for (let r = 0; r < this.tree.roots.length; r++) {
      for (let n = this.tree.roots[r]!; n !== NIL; n = this.tree.roots[r]!) {
        if (this.kind[n] === NodeKind.chain) {
          let d = this.head[n]!;
          while (d !== NIL && this.stale[d] === 1) {
            const next = this.dupNext[d]!;
            this.prune(d);
            d = next;
          }
          if (d !== NIL) break;
          this.freeChain(n);
        } else if (this.stale[n] === 1) {
          this.prune(n);
        } else {
          break;
        }
      }
      if (this.tree.roots[r] !== NIL) busy = true;
    }
    return busy;
  }

  /** free_stable_node_chain: chain `chain`, with no dup left, leaves its tree. */
  private freeChain(chain: number): void {
    this.tree.erase(this.nid[chain]!, chain);
    this.chains--;
    this.release(chain);
  }

  /**
   * Broken invariants, in words: trees in content order and balanced as red-black trees, chains and dups
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
    // A stale node's content is gone: it is not compared.
    const compare = (a: number, b: number): number => {
      const fa = this.contentFrame(a);
      const fb = this.contentFrame(b);
      return fa < 0 || fb < 0 ? -1 : this.memory.compareFrames(fa as Mfn, fb as Mfn);
    };
    const inTree = new Uint8Array(this.highWater);
    for (let r = 0; r < this.tree.roots.length; r++) {
      for (const p of this.tree.check(r, compare)) report(p);
      this.tree.forEachInOrder(r, (n) => {
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
        // A chain may be empty: its dups were pruned, and no walk has met it since.
        if (this.stale[n] === 1) report(`chain ${n} is marked stale`);
        const content = this.contentFrame(n);
        let prev = NIL;
        for (let d = this.head[n]!; d !== NIL; d = this.dupNext[d]!) {
          if (this.kind[d] !== NodeKind.dup || this.chainOf[d] !== n || this.dupPrev[d] !== prev) {
            report(`chain ${n}: dup ${d} is kind ${this.kind[d]}, chain ${this.chainOf[d]}, prev ${this.dupPrev[d]}`);
            break;
          }
          if (this.nid[d] !== this.nid[n]) report(`chain ${n}: dup ${d} in nid ${this.nid[d]}, chain in ${this.nid[n]}`);
          if (this.stale[d] === 0 && this.memory.compareFrames(this.kpfn[d] as Mfn, content as Mfn) !== 0) report(`chain ${n}: dup ${d} differs in content`);
          prev = d;
        }
        continue;
      }
      if (k === NodeKind.dup) dups++;
      const mfn = this.kpfn[n]!;
      const stale = this.stale[n] === 1;
      if (k === NodeKind.dup && this.checksum[n] !== this.checksum[this.chainOf[n]!]) report(`dup ${n}: checksum differs from its chain's`);
      if (stale) {
        // Its frame is no longer a KSM page (it may be free, or reused): only its items are checked.
        if (this.frames.get(mfn) === n) report(`stale KSM page ${n} (mfn ${mfn}) is still in the frame index`);
      } else {
        kpages++;
        if ((this.memory.checksumFrame(mfn as Mfn) >>> 0) !== this.checksum[n]) report(`KSM page ${n}: mfn ${mfn} content does not match its checksum`);
        if (this.frames.get(mfn) !== n) report(`KSM page ${n} (mfn ${mfn}) not in the frame index`);
        if (host.frames.isFree(mfn as Mfn)) report(`KSM page ${n}: mfn ${mfn} is free`);
        else if ((host.frames.flags(mfn as Mfn) & FrameFlags.shared) === 0) report(`KSM page ${n}: mfn ${mfn} is not shared`);
        if ((perNumaNode ? host.nodeOf(mfn as Mfn) : 0) !== this.nid[n]) {
          report(`KSM page ${n}: mfn ${mfn} on NUMA node ${host.nodeOf(mfn as Mfn)} but in tree ${this.nid[n]}`);
        }
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
      const rmap = stale ? mapping : host.p2m.rmap.count(mfn as Mfn);
      if (mapping > rmap) report(`KSM page ${n}: ${mapping} of its items map mfn ${mfn}, reverse map holds ${rmap}`);
      if (len > 0) {
        shared++;
        sharing += len - 1;
      }
    }
    if (kpages !== this.frames.size) report(`${kpages} live KSM pages, frame index holds ${this.frames.size}`);
    if (shared !== this.pagesShared) report(`pages_shared ${this.pagesShared}, recomputed ${shared}`);
    if (sharing !== this.pagesSharing) report(`pages_sharing ${this.pagesSharing}, recomputed ${sharing}`);
    if (chains !== this.chains) report(`stable_node_chains ${this.chains}, recomputed ${chains}`);
    if (dups !== this.dups) report(`stable_node_dups ${this.dups}, recomputed ${dups}`);
    return problems;
  }

  /**
   * stable_node_dup (Linux 6.11 and later), for chain `chain` of tree `r`: walks its dups from the
   * first, pruning each stale one met, and returns the one to use (or NIL: no live dup, and the
   * chain is freed). The first live dup is taken, then replaced by a dup that can take one more
   * mapping; without pruning the walk stops at the first such dup, with pruning (`prune`, and
   * `nowNs` past the chain's time plus stable_node_chains_prune_millisecs, which restarts that
   * time) it walks them all and takes the fullest that has room. When the dup taken is the
   * chain's only one, it takes the chain's place in the tree, full or not (sets `collapsed`);
   * else, when it has room for two more mappings, it moves to the head of the chain.
   */
  private stableNodeDup(r: number, chain: number, nowNs: number, prune: boolean): number {
    this.collapsed = false;
    const due = prune && nowNs >= this.pruneNs.get(chain)! + this.pruneMillisecs * 1e6;
    if (due) this.pruneNs.set(chain, nowNs);
    let found = NIL;
    for (let d = this.head[chain]!; d !== NIL; ) {
      const next = this.dupNext[d]!;
      if (this.stale[d] === 1) {
        this.prune(d);
      } else if (found === NIL || (this.isCandidate(d) && (!this.isCandidate(found) || this.count[d]! > this.count[found]!))) {
        found = d;
        if (!due && this.isCandidate(found)) break;
      }
      d = next;
    }
    if (found === NIL) {
      this.freeChain(chain);
      return NIL;
    }
    if (this.head[chain] === found && this.dupNext[found] === NIL) {
      this.unlinkDup(chain, found);
      this.kind[found] = NodeKind.regular;
      this.chainOf[found] = NIL;
      this.tree.replace(r, chain, found);
      this.chains--;
      this.release(chain);
      this.collapsed = true;
    } else if (this.head[chain] !== found && this.count[found]! > 0 && this.count[found]! + 1 < this.maxPageSharing) {
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
    this.stale[n] = 0;
    this.count[n] = 0;
    this.head[n] = NIL;
    this.dupNext[n] = NIL;
    this.dupPrev[n] = NIL;
    this.chainOf[n] = NIL;
    this.tree.left[n] = NIL;
    this.tree.right[n] = NIL;
    this.tree.parent[n] = NIL;
    return n;
  }

  private release(n: number): void {
    if (this.kind[n] === NodeKind.chain) this.pruneNs.delete(n);
    this.kind[n] = NodeKind.free;
    this.kpfn[n] = -1;
    this.stale[n] = 0;
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
    const stale = new Uint8Array(capacity);
    stale.set(this.stale);
    this.stale = stale;
    const checksum = new Uint32Array(capacity);
    checksum.set(this.checksum);
    this.checksum = checksum;
    const t = this.tree;
    t.left = i32(t.left);
    t.right = i32(t.right);
    t.parent = i32(t.parent);
    const red = new Uint8Array(capacity);
    red.set(t.red);
    t.red = red;
  }
}
