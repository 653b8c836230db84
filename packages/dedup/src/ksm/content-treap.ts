/** No node. */
export const NIL = -1;
/** What {@link TreapKey.compareTo} returns to stop a search (the node's page is gone, say). */
export const SEARCH_ABORT = 2;
/** What {@link ContentTreap.search} returns when the key stopped the search. */
export const ABORTED = -2;

const LEFT = 0;
const RIGHT = 1;

/** The key of a search: compares itself with a node's content. */
export interface TreapKey {
  /**
   * -1 when the key orders before `node`, 1 after, 0 equal; or {@link SEARCH_ABORT}. Called
   * once per node on the search path, so it may record what it saw (the node's frame).
   */
  compareTo(node: number): number;
}

/** Node links of a treap, in arrays indexed by node (owned by the caller, which may grow them). */
export interface TreapLinks {
  left: Int32Array;
  right: Int32Array;
  /** Parent of each node; null when the treap does not keep parents (then erase needs a search path). */
  parent: Int32Array | null;
  /** Priority of each node; null when priorities are a hash of the node number. */
  prio: Uint32Array | null;
}

/**
 * A bijective 32-bit mix (lowbias32): distinct node numbers get distinct, well spread priorities.
 * Also used to draw the stored priorities of new nodes.
 */
export function mixPriority(n: number): number {
  let h = Math.imul(n ^ (n >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Content-ordered binary search trees (one per root, e.g. per NUMA node) kept balanced as a treap:
 * a max-heap on node priorities, so the shape depends on priorities only, never on contents. Like
 * the kernel's red-black unstable tree, it therefore stays balanced when contents change under it
 * (the order may break, searches may then miss, nothing else goes wrong).
 *
 * Nodes are numbers; links live in typed arrays ({@link TreapLinks}) that the owner allocates and
 * may replace when it grows them. Nothing allocates per operation except the rare growth of the
 * search-path buffer. A search records its path, so that the following insert or erase of the found
 * node needs no comparison: comparisons are memcmp of whole pages, the cost that matters.
 */
export class ContentTreap {
  /** Left child of each node. */
  left: Int32Array;
  /** Right child of each node. */
  right: Int32Array;
  /** Parent of each node, or null. */
  parent: Int32Array | null;
  /** Stored priority of each node, or null (hash of the node number). */
  prio: Uint32Array | null;
  /** Root of each tree. */
  readonly roots: Int32Array;
  /** Nodes in each tree. */
  readonly sizes: Int32Array;
  /** Comparisons made by searches since creation (a cost counter). */
  comparisons = 0;

  private pathNodes = new Int32Array(64);
  private pathDirs = new Int8Array(64);
  /** Length of the last search path; -1 when it may not be used (aborted, or the tree changed since). */
  private pathLength = -1;
  private pathRoot = -1;
  private stackA = new Int32Array(64);
  private stackB = new Int32Array(64);

  /** `rootCount` empty trees over `links`. */
  constructor(rootCount: number, links: TreapLinks) {
    this.left = links.left;
    this.right = links.right;
    this.parent = links.parent;
    this.prio = links.prio;
    this.roots = new Int32Array(rootCount).fill(NIL);
    this.sizes = new Int32Array(rootCount);
  }

  /** Bytes of the path buffers, stacks and roots (the links belong to the owner). */
  get ownBytes(): number {
    return (
      this.pathNodes.byteLength +
      this.pathDirs.byteLength +
      this.stackA.byteLength +
      this.stackB.byteLength +
      this.roots.byteLength +
      this.sizes.byteLength
    );
  }

  /** Priority of `n`: higher nodes sit nearer the root. */
  priority(n: number): number {
    const p = this.prio;
    return p === null ? mixPriority(n) : p[n]!;
  }

  /**
   * Walks tree `r` from its root as `key` directs. Returns the node equal to the key, NIL when
   * there is none (the path is kept for {@link insertAtSearchPath}), or ABORTED.
   */
  search(r: number, key: TreapKey): number {
    const left = this.left;
    const right = this.right;
    let n = this.roots[r]!;
    let len = 0;
    this.pathRoot = r;
    while (n !== NIL) {
      const c = key.compareTo(n);
      this.comparisons++;
      if (c === SEARCH_ABORT) {
        this.pathLength = -1;
        return ABORTED;
      }
      if (len === this.pathNodes.length) this.growPath();
      this.pathNodes[len] = n;
      this.pathDirs[len] = c;
      len++;
      if (c === 0) break;
      n = c < 0 ? left[n]! : right[n]!;
    }
    this.pathLength = len;
    return n;
  }

  /**
   * Inserts node `x` into tree `r` where the last search (which must have returned NIL on `r`,
   * with no change to the tree since) ended: x goes down the path to where its priority fits,
   * and the subtree it lands on is split along the rest of the path, with no comparison.
   */
  insertAtSearchPath(r: number, x: number): void {
    const len = this.pathLength;
    if (len < 0 || this.pathRoot !== r || (len > 0 && this.pathDirs[len - 1] === 0)) {
      throw new Error(`treap: insert of ${x} without a fresh failed search on root ${r}`);
    }
    const nodes = this.pathNodes;
    const dirs = this.pathDirs;
    const px = this.priority(x);
    let k = 0;
    while (k < len && this.priority(nodes[k]!) > px) k++;
    if (k === 0) this.setRoot(r, x);
    else this.link(nodes[k - 1]!, dirs[k - 1]! < 0 ? LEFT : RIGHT, x);
    let lNode = x;
    let lSide = LEFT;
    let rNode = x;
    let rSide = RIGHT;
    for (let i = k; i < len; i++) {
      const n = nodes[i]!;
      if (dirs[i]! < 0) {
        // x < n: n and its right subtree go right of x; its left subtree is split further.
        this.link(rNode, rSide, n);
        rNode = n;
        rSide = LEFT;
      } else {
        this.link(lNode, lSide, n);
        lNode = n;
        lSide = RIGHT;
      }
    }
    this.link(lNode, lSide, NIL);
    this.link(rNode, rSide, NIL);
    this.sizes[r]!++;
    this.pathLength = -1;
  }

  /**
   * Removes node `n` from tree `r`. Its parent comes from the parent links, or else from the last
   * search, which must have found `n`.
   */
  erase(r: number, n: number): void {
    let p: number;
    if (this.parent !== null) {
      p = this.parent[n]!;
    } else {
      const len = this.pathLength;
      if (len < 1 || this.pathRoot !== r || this.pathNodes[len - 1] !== n) {
        throw new Error(`treap: erase of ${n} without parents nor a search that found it`);
      }
      p = len >= 2 ? this.pathNodes[len - 2]! : NIL;
    }
    const side = p === NIL ? LEFT : this.left[p] === n ? LEFT : RIGHT;
    this.merge(r, p, side, this.left[n]!, this.right[n]!);
    this.left[n] = NIL;
    this.right[n] = NIL;
    if (this.parent !== null) this.parent[n] = NIL;
    this.sizes[r]!--;
    this.pathLength = -1;
  }

  /** Puts node `neu` (not in any tree) in the place of `old` in tree `r`, priority included. Needs parents. */
  replace(r: number, old: number, neu: number): void {
    const parent = this.parent;
    if (parent === null) throw new Error('treap: replace needs parent links');
    const l = this.left[old]!;
    const rt = this.right[old]!;
    const p = parent[old]!;
    this.left[neu] = l;
    this.right[neu] = rt;
    if (l !== NIL) parent[l] = neu;
    if (rt !== NIL) parent[rt] = neu;
    if (p === NIL) this.setRoot(r, neu);
    else this.link(p, this.left[p] === old ? LEFT : RIGHT, neu);
    if (this.prio !== null) this.prio[neu] = this.prio[old]!;
    this.left[old] = NIL;
    this.right[old] = NIL;
    parent[old] = NIL;
    this.pathLength = -1;
  }

  /** Empties tree `r` (its nodes' links are left as they are: garbage). */
  reset(r: number): void {
    this.roots[r] = NIL;
    this.sizes[r] = 0;
    this.pathLength = -1;
  }

  /**
   * Calls `fn` on the nodes of tree `r` in order, stopping early when it returns false. At most
   * `sizes[r]` nodes are visited, so a corrupted tree cannot loop. Not for the hot path.
   */
  forEachInOrder(r: number, fn: (n: number) => boolean | void): void {
    this.stackA = walkInOrder(this.roots[r]!, this.sizes[r]!, this.left, this.right, this.stackA, fn);
  }

  /**
   * Rebuilds tree `r` from its nodes for which `keep` is true, in the same order, in time linear
   * in its size and with no comparison (a Cartesian tree over the kept in-order sequence).
   */
  rebuild(r: number, keep: (n: number) => boolean): void {
    let count = 0;
    this.forEachInOrder(r, (n) => {
      if (!keep(n)) return;
      if (count === this.stackB.length) this.stackB = grown(this.stackB);
      this.stackB[count++] = n;
    });
    const seq = this.stackB;
    const stack = this.stackA.length >= count ? this.stackA : (this.stackA = new Int32Array(Math.max(64, count)));
    const parent = this.parent;
    let depth = 0;
    for (let i = 0; i < count; i++) {
      const x = seq[i]!;
      const px = this.priority(x);
      let last = NIL;
      while (depth > 0 && this.priority(stack[depth - 1]!) < px) last = stack[--depth]!;
      this.left[x] = last;
      this.right[x] = NIL;
      if (parent !== null && last !== NIL) parent[last] = x;
      if (depth > 0) {
        this.right[stack[depth - 1]!] = x;
        if (parent !== null) parent[x] = stack[depth - 1]!;
      } else if (parent !== null) {
        parent[x] = NIL;
      }
      stack[depth++] = x;
    }
    this.roots[r] = depth > 0 ? stack[0]! : NIL;
    if (parent !== null && depth > 0) parent[stack[0]!] = NIL;
    this.sizes[r] = count;
    this.pathLength = -1;
  }

  /**
   * Broken invariants of tree `r`, in words: size, heap order of priorities, parent links and,
   * with `compare` (a comparison of two nodes' contents), strictly increasing in-order contents.
   */
  check(r: number, compare?: (a: number, b: number) => number): string[] {
    const problems: string[] = [];
    const size = this.sizes[r]!;
    const root = this.roots[r]!;
    if (root !== NIL && this.parent !== null && this.parent[root] !== NIL) {
      problems.push(`tree ${r}: root ${root} has parent ${this.parent[root]}`);
    }
    let count = 0;
    let prev = NIL;
    this.forEachInOrder(r, (n) => {
      count++;
      for (const c of [this.left[n]!, this.right[n]!]) {
        if (c === NIL) continue;
        if (this.priority(c) > this.priority(n)) problems.push(`tree ${r}: child ${c} outranks its parent ${n}`);
        if (this.parent !== null && this.parent[c] !== n) {
          problems.push(`tree ${r}: node ${c} under ${n} has parent link ${this.parent[c]}`);
        }
      }
      if (compare !== undefined && prev !== NIL && compare(prev, n) >= 0) {
        problems.push(`tree ${r}: node ${prev} does not order before its successor ${n}`);
      }
      prev = n;
      return problems.length < 20;
    });
    if (count !== size && problems.length === 0) problems.push(`tree ${r}: ${count} nodes reachable, size says ${size}`);
    return problems;
  }

  private setRoot(r: number, x: number): void {
    this.roots[r] = x;
    if (x !== NIL && this.parent !== null) this.parent[x] = NIL;
  }

  private link(node: number, side: number, child: number): void {
    if (side === LEFT) this.left[node] = child;
    else this.right[node] = child;
    if (child !== NIL && this.parent !== null) this.parent[child] = node;
  }

  /** Links the union of treaps `a` < `b` where `p` (NIL: the root of `r`) had its child on `side`. */
  private merge(r: number, p: number, side: number, a: number, b: number): void {
    let hNode = p;
    let hSide = side;
    while (a !== NIL && b !== NIL) {
      if (this.priority(a) > this.priority(b)) {
        this.put(r, hNode, hSide, a);
        hNode = a;
        hSide = RIGHT;
        a = this.right[a]!;
      } else {
        this.put(r, hNode, hSide, b);
        hNode = b;
        hSide = LEFT;
        b = this.left[b]!;
      }
    }
    this.put(r, hNode, hSide, a !== NIL ? a : b);
  }

  private put(r: number, node: number, side: number, child: number): void {
    if (node === NIL) this.setRoot(r, child);
    else this.link(node, side, child);
  }

  private growPath(): void {
    const nodes = new Int32Array(this.pathNodes.length * 2);
    nodes.set(this.pathNodes);
    const dirs = new Int8Array(this.pathDirs.length * 2);
    dirs.set(this.pathDirs);
    this.pathNodes = nodes;
    this.pathDirs = dirs;
  }
}

/**
 * Calls `fn` on the nodes of the binary tree under `root` (links `left`, `right`) in order,
 * stopping early when it returns false, and visiting at most `limit` nodes, so that a corrupted
 * tree cannot loop. `stack` is the caller's scratch; the one to keep (grown if it had to) is returned.
 */
export function walkInOrder(
  root: number,
  limit: number,
  left: Int32Array,
  right: Int32Array,
  stack: Int32Array<ArrayBuffer>,
  fn: (n: number) => boolean | void,
): Int32Array<ArrayBuffer> {
  let visited = 0;
  let depth = 0;
  let n = root;
  while (n !== NIL || depth > 0) {
    while (n !== NIL) {
      if (depth === stack.length) stack = grown(stack);
      stack[depth++] = n;
      n = left[n]!;
      if (depth > limit + 1) return stack;
    }
    n = stack[--depth]!;
    if (++visited > limit || fn(n) === false) return stack;
    n = right[n]!;
  }
  return stack;
}

function grown(a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}
