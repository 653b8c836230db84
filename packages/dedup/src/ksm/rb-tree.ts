import { ABORTED, NIL, SEARCH_ABORT, walkInOrder, type TreapKey } from './content-treap.js';

/** Node links of red-black trees, in arrays indexed by node (owned by the caller, which may grow them). */
export interface RbLinks {
  left: Int32Array;
  right: Int32Array;
  parent: Int32Array;
  /** 1 for a red node, 0 for a black one. */
  red: Uint8Array;
}

const BLACK = 0;
const RED = 1;

/**
 * Red-black trees (one per root, e.g. per NUMA node) that take the very shapes Linux's
 * lib/rbtree.c gives the same sequence of operations: the same insertion fix-up after
 * rb_link_node (recolouring, then one or two rotations), the same erase (a node with two
 * children is replaced by its in-order successor, which takes its place and colour) and erase
 * fix-up, and rb_replace_node. KSM's stable tree is one: which stable nodes a walk from the root
 * meets, and so which stale ones it prunes, depends on the tree's shape, so pagevisor's must be
 * the kernel's.
 *
 * Nodes are numbers; links live in typed arrays ({@link RbLinks}) that the owner allocates and may
 * replace when it grows them. A search records where it ended, so that the insertion that
 * follows needs no comparison.
 */
export class RbTree {
  left: Int32Array;
  right: Int32Array;
  parent: Int32Array;
  red: Uint8Array;
  /** Root of each tree. */
  readonly roots: Int32Array;
  /** Nodes in each tree. */
  readonly sizes: Int32Array;
  /** Comparisons made by searches since creation (a cost counter). */
  comparisons = 0;

  /** Where the last search ended: the node to link under and on which side, for tree `lastRoot`. */
  private lastParent = NIL;
  private lastSide = 0;
  private lastRoot = -1;
  private stack = new Int32Array(64);

  /** `rootCount` empty trees over `links`. */
  constructor(rootCount: number, links: RbLinks) {
    this.left = links.left;
    this.right = links.right;
    this.parent = links.parent;
    this.red = links.red;
    this.roots = new Int32Array(rootCount).fill(NIL);
    this.sizes = new Int32Array(rootCount);
  }

  /** Bytes of the roots and the walk stack (the links belong to the owner). */
  get ownBytes(): number {
    return this.roots.byteLength + this.sizes.byteLength + this.stack.byteLength;
  }

  /**
   * Walks tree `r` from its root as `key` directs. Returns the node equal to the key, NIL when
   * there is none (where it would go is kept for {@link insertAtSearchPath}), or ABORTED.
   */
  search(r: number, key: TreapKey): number {
    let n = this.roots[r]!;
    let p = NIL;
    let side = 0;
    this.lastRoot = -1;
    while (n !== NIL) {
      const c = key.compareTo(n);
      this.comparisons++;
      if (c === SEARCH_ABORT) return ABORTED;
      if (c === 0) return n;
      p = n;
      side = c;
      n = c < 0 ? this.left[n]! : this.right[n]!;
    }
    this.lastParent = p;
    this.lastSide = side;
    this.lastRoot = r;
    return NIL;
  }

  /**
   * rb_link_node then rb_insert_color: node `x` goes where the last search of tree `r` (which
   * must have returned NIL, with no change to the tree since) ended, red, and the tree is
   * rebalanced.
   */
  insertAtSearchPath(r: number, x: number): void {
    if (this.lastRoot !== r) throw new Error(`rb-tree: insert of ${x} without a fresh failed search on root ${r}`);
    this.lastRoot = -1;
    const p = this.lastParent;
    this.left[x] = NIL;
    this.right[x] = NIL;
    this.parent[x] = p;
    this.red[x] = RED;
    if (p === NIL) this.roots[r] = x;
    else if (this.lastSide < 0) this.left[p] = x;
    else this.right[p] = x;
    this.sizes[r]!++;
    this.insertColor(r, x);
  }

  /** rb_erase: removes node `n` from tree `r` and rebalances it. */
  erase(r: number, n: number): void {
    const { left, right, parent, red } = this;
    this.lastRoot = -1;
    let rebalance = NIL;
    const child = right[n]!;
    const l = left[n]!;
    if (l === NIL) {
      // At most a right child, which takes the node's place and colour.
      const p = parent[n]!;
      const wasRed = red[n]!;
      this.changeChild(r, n, child, p);
      if (child !== NIL) {
        parent[child] = p;
        red[child] = wasRed;
      } else if (wasRed === BLACK) {
        rebalance = p;
      }
    } else if (child === NIL) {
      // Only a left child: it takes the node's place and colour.
      const p = parent[n]!;
      parent[l] = p;
      red[l] = red[n]!;
      this.changeChild(r, n, l, p);
    } else {
      // Two children: the in-order successor takes the node's place and colour.
      let successor = child;
      let below: number; // the successor's parent once it has moved
      let child2: number;
      let t = left[child]!;
      if (t === NIL) {
        below = successor;
        child2 = right[successor]!;
      } else {
        do {
          below = successor;
          successor = t;
          t = left[t]!;
        } while (t !== NIL);
        child2 = right[successor]!;
        left[below] = child2;
        right[successor] = child;
        parent[child] = successor;
      }
      left[successor] = l;
      parent[l] = successor;
      const p = parent[n]!;
      const nodeRed = red[n]!;
      this.changeChild(r, n, successor, p);
      if (child2 !== NIL) {
        parent[child2] = below;
        red[child2] = BLACK;
      } else if (red[successor] === BLACK) {
        rebalance = below;
      }
      parent[successor] = p;
      red[successor] = nodeRed;
    }
    if (rebalance !== NIL) this.eraseColor(r, rebalance);
    left[n] = NIL;
    right[n] = NIL;
    parent[n] = NIL;
    this.sizes[r]!--;
  }

  /** rb_replace_node: node `neu` (in no tree) takes the place, links and colour of `old` in tree `r`. */
  replace(r: number, old: number, neu: number): void {
    const { left, right, parent, red } = this;
    this.lastRoot = -1;
    const l = left[old]!;
    const rt = right[old]!;
    const p = parent[old]!;
    left[neu] = l;
    right[neu] = rt;
    parent[neu] = p;
    red[neu] = red[old]!;
    if (l !== NIL) parent[l] = neu;
    if (rt !== NIL) parent[rt] = neu;
    this.changeChild(r, old, neu, p);
    left[old] = NIL;
    right[old] = NIL;
    parent[old] = NIL;
  }

  /** Empties tree `r` (its nodes' links are left as they are: garbage). */
  reset(r: number): void {
    this.roots[r] = NIL;
    this.sizes[r] = 0;
    this.lastRoot = -1;
  }

  /**
   * Calls `fn` on the nodes of tree `r` in order, stopping early when it returns false. At most
   * `sizes[r]` nodes are visited, so a corrupted tree cannot loop. Not for the hot path.
   */
  forEachInOrder(r: number, fn: (n: number) => boolean | void): void {
    this.stack = walkInOrder(this.roots[r]!, this.sizes[r]!, this.left, this.right, this.stack, fn);
  }


  /**
   * Broken invariants of tree `r`, in words: size, parent links, a black root, no red node with
   * a red child, one black height on every path and, with `compare` (a comparison of two nodes'
   * contents), strictly increasing in-order contents.
   */
  check(r: number, compare?: (a: number, b: number) => number): string[] {
    const problems: string[] = [];
    const root = this.roots[r]!;
    if (root !== NIL && (this.parent[root] !== NIL || this.red[root] === RED)) {
      problems.push(`tree ${r}: root ${root} has parent ${this.parent[root]}, colour ${this.red[root] === RED ? 'red' : 'black'}`);
    }
    let count = 0;
    let prev = NIL;
    let blackHeight = -1;
    this.forEachInOrder(r, (n) => {
      count++;
      for (const c of [this.left[n]!, this.right[n]!]) {
        if (c === NIL) continue;
        if (this.parent[c] !== n) problems.push(`tree ${r}: node ${c} under ${n} has parent link ${this.parent[c]}`);
        if (this.red[n] === RED && this.red[c] === RED) problems.push(`tree ${r}: red node ${n} has a red child ${c}`);
      }
      if (this.left[n] === NIL || this.right[n] === NIL) {
        // A path ends below n: count its black nodes up to the root.
        let h = 0;
        for (let m = n; m !== NIL && h <= count + 64; m = this.parent[m]!) if (this.red[m] === BLACK) h++;
        if (blackHeight < 0) blackHeight = h;
        else if (h !== blackHeight) problems.push(`tree ${r}: a path through ${n} has ${h} black nodes, another ${blackHeight}`);
      }
      if (compare !== undefined && prev !== NIL && compare(prev, n) >= 0) {
        problems.push(`tree ${r}: node ${prev} does not order before its successor ${n}`);
      }
      prev = n;
      return problems.length < 20;
    });
    if (count !== this.sizes[r] && problems.length === 0) problems.push(`tree ${r}: ${count} nodes reachable, size says ${this.sizes[r]}`);
    return problems;
  }

  /** `old`'s parent `p` (NIL: tree `r`'s root) now has `neu` where it had `old`. */
  private changeChild(r: number, old: number, neu: number, p: number): void {
    if (p === NIL) this.roots[r] = neu;
    else if (this.left[p] === old) this.left[p] = neu;
    else this.right[p] = neu;
  }

  /** A rotation's last step: `neu` takes `old`'s parent and colour, `old` goes under `neu` with colour `colour`. */
  private rotateSetParents(r: number, old: number, neu: number, colour: number): void {
    const p = this.parent[old]!;
    this.parent[neu] = p;
    this.red[neu] = this.red[old]!;
    this.parent[old] = neu;
    this.red[old] = colour;
    this.changeChild(r, old, neu, p);
  }

  /** rb_insert_color's fix-up for red node `x`, just linked. */
  private insertColor(r: number, x: number): void {
    const { left, right, parent, red } = this;
    let node = x;
    let p = parent[node]!;
    for (;;) {
      if (p === NIL) {
        red[node] = BLACK; // the root
        return;
      }
      if (red[p] === BLACK) return;
      const g = parent[p]!; // p is red, so not the root
      let t = right[g]!;
      if (p !== t) {
        // p is g's left child; t its sibling.
        if (t !== NIL && red[t] === RED) {
          // Red uncle: recolour, go on from the grandparent.
          red[t] = BLACK;
          red[p] = BLACK;
          node = g;
          p = parent[node]!;
          red[node] = RED;
          continue;
        }
        t = right[p]!;
        if (node === t) {
          // node is p's right child: rotate left at p.
          t = left[node]!;
          right[p] = t;
          left[node] = p;
          if (t !== NIL) {
            parent[t] = p;
            red[t] = BLACK;
          }
          parent[p] = node;
          red[p] = RED;
          p = node;
          t = right[node]!;
        }
        // Rotate right at g.
        left[g] = t;
        right[p] = g;
        if (t !== NIL) {
          parent[t] = g;
          red[t] = BLACK;
        }
        this.rotateSetParents(r, g, p, RED);
        return;
      }
      // p is g's right child: the mirror image.
      t = left[g]!;
      if (t !== NIL && red[t] === RED) {
        red[t] = BLACK;
        red[p] = BLACK;
        node = g;
        p = parent[node]!;
        red[node] = RED;
        continue;
      }
      t = left[p]!;
      if (node === t) {
        t = right[node]!;
        left[p] = t;
        right[node] = p;
        if (t !== NIL) {
          parent[t] = p;
          red[t] = BLACK;
        }
        parent[p] = node;
        red[p] = RED;
        p = node;
        t = left[node]!;
      }
      right[g] = t;
      left[p] = g;
      if (t !== NIL) {
        parent[t] = g;
        red[t] = BLACK;
      }
      this.rotateSetParents(r, g, p, RED);
      return;
    }
  }

  /** The erase fix-up: a black node was removed below `p`, on the side where `p` now has no child or the walk came from. */
  private eraseColor(r: number, start: number): void {
    const { left, right, parent, red } = this;
    let p = start;
    let node = NIL;
    for (;;) {
      let sibling = right[p]!;
      if (node !== sibling) {
        // node is p's left child (or the empty left side).
        if (red[sibling] === RED) {
          // Rotate left at p.
          const t = left[sibling]!;
          right[p] = t;
          left[sibling] = p;
          parent[t] = p;
          red[t] = BLACK;
          this.rotateSetParents(r, p, sibling, RED);
          sibling = t;
        }
        let t1 = right[sibling]!;
        if (t1 === NIL || red[t1] === BLACK) {
          const t2 = left[sibling]!;
          if (t2 === NIL || red[t2] === BLACK) {
            // Recolour the sibling red; p absorbs the missing black, or the walk goes up.
            red[sibling] = RED;
            if (red[p] === RED) {
              red[p] = BLACK;
            } else {
              node = p;
              p = parent[node]!;
              if (p !== NIL) continue;
            }
            return;
          }
          // Rotate right at the sibling.
          t1 = right[t2]!;
          left[sibling] = t1;
          right[t2] = sibling;
          right[p] = t2;
          if (t1 !== NIL) {
            parent[t1] = sibling;
            red[t1] = BLACK;
          }
          t1 = sibling;
          sibling = t2;
        }
        // Rotate left at p, and recolour.
        const t2 = left[sibling]!;
        right[p] = t2;
        left[sibling] = p;
        parent[t1] = sibling;
        red[t1] = BLACK;
        if (t2 !== NIL) parent[t2] = p;
        this.rotateSetParents(r, p, sibling, BLACK);
        return;
      }
      // node is p's right child: the mirror image.
      sibling = left[p]!;
      if (red[sibling] === RED) {
        const t = right[sibling]!;
        left[p] = t;
        right[sibling] = p;
        parent[t] = p;
        red[t] = BLACK;
        this.rotateSetParents(r, p, sibling, RED);
        sibling = t;
      }
      let t1 = left[sibling]!;
      if (t1 === NIL || red[t1] === BLACK) {
        const t2 = right[sibling]!;
        if (t2 === NIL || red[t2] === BLACK) {
          red[sibling] = RED;
          if (red[p] === RED) {
            red[p] = BLACK;
          } else {
            node = p;
            p = parent[node]!;
            if (p !== NIL) continue;
          }
          return;
        }
        t1 = left[t2]!;
        right[sibling] = t1;
        left[t2] = sibling;
        left[p] = t2;
        if (t1 !== NIL) {
          parent[t1] = sibling;
          red[t1] = BLACK;
        }
        t1 = sibling;
        sibling = t2;
      }
      const t2 = right[sibling]!;
      left[p] = t2;
      right[sibling] = p;
      parent[t1] = sibling;
      red[t1] = BLACK;
      if (t2 !== NIL) parent[t2] = p;
      this.rotateSetParents(r, p, sibling, BLACK);
      return;
    }
  }
}
