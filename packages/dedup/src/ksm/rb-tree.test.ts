import { Prng } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { ABORTED, NIL, SEARCH_ABORT } from './content-treap.js';
import { RbTree } from './rb-tree.js';

/** Trees over nodes 0..n-1 whose keys are `keys[node]`. */
function trees(n: number, roots = 1): RbTree {
  return new RbTree(roots, {
    left: new Int32Array(n).fill(NIL),
    right: new Int32Array(n).fill(NIL),
    parent: new Int32Array(n).fill(NIL),
    red: new Uint8Array(n),
  });
}

function keyOf(keys: number[], k: number, abortAt = NaN) {
  return { compareTo: (node: number) => (keys[node] === abortAt ? SEARCH_ABORT : k < keys[node]! ? -1 : k > keys[node]! ? 1 : 0) };
}

function insert(t: RbTree, keys: number[], node: number, r = 0): void {
  expect(t.search(r, keyOf(keys, keys[node]!))).toBe(NIL);
  t.insertAtSearchPath(r, node);
}

/** The tree as nested text: key, colour (r/b), children. */
function shape(t: RbTree, keys: number[], n: number): string {
  if (n === NIL) return '.';
  const c = t.red[n] === 1 ? 'r' : 'b';
  if (t.left[n] === NIL && t.right[n] === NIL) return `${keys[n]}${c}`;
  return `(${shape(t, keys, t.left[n]!)} ${keys[n]}${c} ${shape(t, keys, t.right[n]!)})`;
}

describe('RbTree: the shapes of Linux lib/rbtree.c', () => {
  it('ascending inserts 1..7: rotations and recolourings as rb_insert_color does them', () => {
    const keys = [1, 2, 3, 4, 5, 6, 7];
    const t = trees(7);
    const steps: string[] = [];
    for (let i = 0; i < 7; i++) {
      insert(t, keys, i);
      steps.push(shape(t, keys, t.roots[0]!));
    }
    expect(steps).toEqual([
      '1b',
      '(. 1b 2r)',
      '(1r 2b 3r)',
      '(1b 2b (. 3b 4r))',
      '(1b 2b (3r 4b 5r))',
      '(1b 2b (3b 4r (. 5b 6r)))',
      '(1b 2b (3b 4r (5r 6b 7r)))',
    ]);
    expect(t.check(0, (a, b) => keys[a]! - keys[b]!)).toEqual([]);
  });

  it('erase: a leaf, a node with one child, a node with two children (its successor takes its place and colour)', () => {
    const keys = [1, 2, 3, 4, 5, 6, 7];
    const t = trees(7);
    for (let i = 0; i < 7; i++) insert(t, keys, i);
    // (1b 2b (3b 4r (5r 6b 7r)))
    t.erase(0, 6); // 7, a red leaf
    expect(shape(t, keys, t.roots[0]!)).toBe('(1b 2b (3b 4r (5r 6b .)))');
    t.erase(0, 5); // 6, black with a red left child: the child takes its place, black
    expect(shape(t, keys, t.roots[0]!)).toBe('(1b 2b (3b 4r 5b))');
    t.erase(0, 1); // 2, the root, two children: its successor 3 takes its place
    expect(shape(t, keys, t.roots[0]!)).toBe('(1b 3b (. 4b 5r))');
    t.erase(0, 0); // 1, a black leaf: the fix-up rotates at 3
    expect(shape(t, keys, t.roots[0]!)).toBe('(3b 4b 5b)');
    expect(t.check(0, (a, b) => keys[a]! - keys[b]!)).toEqual([]);
    expect(t.sizes[0]).toBe(3);
  });

  it('replace: the new node takes the old one\'s place, links and colour', () => {
    const keys = [1, 2, 3, 2];
    const t = trees(4);
    for (let i = 0; i < 3; i++) insert(t, keys, i);
    t.replace(0, 1, 3);
    expect(t.roots[0]).toBe(3);
    expect([t.left[3], t.right[3], t.red[3], t.parent[0], t.parent[2]]).toEqual([0, 2, 0, 3, 3]);
    expect([t.left[1], t.right[1], t.parent[1]]).toEqual([NIL, NIL, NIL]);
    expect(t.check(0, (a, b) => keys[a]! - keys[b]!)).toEqual([]);
  });

  it('search: finds equal keys, records where a new one goes, and stops on SEARCH_ABORT', () => {
    const keys = [10, 20, 30, 25];
    const t = trees(4);
    for (let i = 0; i < 3; i++) insert(t, keys, i);
    expect(t.search(0, keyOf(keys, 30))).toBe(2);
    expect(t.search(0, keyOf(keys, 25, 30))).toBe(ABORTED);
    expect(() => t.insertAtSearchPath(0, 3)).toThrow(/without a fresh failed search/);
    expect(t.search(0, keyOf(keys, 25))).toBe(NIL);
    t.insertAtSearchPath(0, 3);
    expect(t.parent[3]).toBe(2);
    expect(t.comparisons).toBeGreaterThan(0);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('seed %i: random inserts and erases keep a valid red-black tree in key order', (seed) => {
    const rng = new Prng(seed);
    const n = 300;
    const keys = Array.from({ length: n }, (_, i) => i * 7919 % 100_003);
    const t = trees(n, 2);
    const inTree = new Map<number, number>(); // node -> root
    for (let step = 0; step < 3000; step++) {
      const node = rng.nextInt(n);
      const r = node % 2;
      if (inTree.has(node)) {
        t.erase(r, node);
        inTree.delete(node);
      } else {
        insert(t, keys, node, r);
        inTree.set(node, r);
      }
      if (step % 97 === 0) {
        for (const root of [0, 1]) {
          expect(t.check(root, (a, b) => keys[a]! - keys[b]!)).toEqual([]);
          const seen: number[] = [];
          t.forEachInOrder(root, (x) => void seen.push(x));
          const want = [...inTree].filter(([, rr]) => rr === root).map(([x]) => x).sort((a, b) => keys[a]! - keys[b]!);
          expect(seen).toEqual(want);
        }
      }
    }
  });
});
