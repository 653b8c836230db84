import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ABORTED, ContentTreap, mixPriority, NIL, SEARCH_ABORT, type TreapKey } from './content-treap.js';

const CAPACITY = 512;

/** Node contents are numbers in `value`; the key searches for `want`. */
class NumberKey implements TreapKey {
  want = 0;
  abortAt = NIL;
  constructor(private readonly value: Float64Array) {}
  compareTo(node: number): number {
    if (node === this.abortAt) return SEARCH_ABORT;
    const v = this.value[node]!;
    return this.want < v ? -1 : this.want > v ? 1 : 0;
  }
}

function makeTreap(withParents: boolean, roots = 1) {
  const value = new Float64Array(CAPACITY);
  const treap = new ContentTreap(roots, {
    left: new Int32Array(CAPACITY).fill(NIL),
    right: new Int32Array(CAPACITY).fill(NIL),
    parent: withParents ? new Int32Array(CAPACITY).fill(NIL) : null,
    prio: withParents ? new Uint32Array(CAPACITY) : null,
  });
  const key = new NumberKey(value);
  const byValue = (a: number, b: number): number => value[a]! - value[b]!;
  const inOrder = (r = 0): number[] => {
    const out: number[] = [];
    treap.forEachInOrder(r, (n) => {
      out.push(value[n]!);
    });
    return out;
  };
  return { value, treap, key, byValue, inOrder };
}

type Op = { kind: 'insert' | 'delete'; v: number } | { kind: 'replace'; v: number } | { kind: 'rebuild'; mod: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('insert' as const), v: fc.integer({ min: 0, max: 200 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), v: fc.integer({ min: 0, max: 200 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('replace' as const), v: fc.integer({ min: 0, max: 200 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rebuild' as const), mod: fc.integer({ min: 2, max: 5 }) }) },
);

describe.each([true, false])('ContentTreap (parents and stored priorities: %s) against a sorted array', (withParents) => {
  it('insert, search, erase, replace and rebuild keep the contents sorted and the treap sound', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
        const { value, treap, key, byValue, inOrder } = makeTreap(withParents);
        const model: number[] = [];
        const nodeOf = new Map<number, number>();
        const free: number[] = Array.from({ length: CAPACITY }, (_, i) => CAPACITY - 1 - i);
        let seq = 0;
        for (const op of ops) {
          if (op.kind === 'rebuild') {
            treap.rebuild(0, (n) => value[n]! % op.mod !== 0);
            for (let i = model.length - 1; i >= 0; i--) {
              if (model[i]! % op.mod === 0) {
                free.push(nodeOf.get(model[i]!)!);
                nodeOf.delete(model[i]!);
                model.splice(i, 1);
              }
            }
          } else {
            key.want = op.v;
            const found = treap.search(0, key);
            expect(found === NIL ? undefined : value[found]).toBe(model.includes(op.v) ? op.v : undefined);
            if (op.kind === 'insert' && found === NIL) {
              const n = free.pop()!;
              value[n] = op.v;
              if (treap.prio !== null) treap.prio[n] = mixPriority(++seq);
              treap.insertAtSearchPath(0, n);
              nodeOf.set(op.v, n);
              model.push(op.v);
              model.sort((a, b) => a - b);
            } else if (op.kind === 'delete' && found !== NIL) {
              treap.erase(0, found);
              free.push(found);
              nodeOf.delete(op.v);
              model.splice(model.indexOf(op.v), 1);
            } else if (op.kind === 'replace' && found !== NIL && withParents) {
              const n = free.pop()!;
              value[n] = op.v;
              treap.replace(0, found, n);
              free.push(found);
              nodeOf.set(op.v, n);
            }
          }
          expect(treap.check(0, byValue)).toEqual([]);
          expect(inOrder()).toEqual(model);
          expect(treap.sizes[0]).toBe(model.length);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('stays shallow: 400 sorted inserts make a tree of logarithmic depth', () => {
    const { value, treap, key } = makeTreap(withParents);
    for (let i = 0; i < 400; i++) {
      value[i] = i;
      if (treap.prio !== null) treap.prio[i] = mixPriority(i + 1);
      key.want = i;
      expect(treap.search(0, key)).toBe(NIL);
      treap.insertAtSearchPath(0, i);
    }
    let deepest = 0;
    const depth = (n: number, d: number): void => {
      if (n === NIL) return;
      deepest = Math.max(deepest, d);
      depth(treap.left[n]!, d + 1);
      depth(treap.right[n]!, d + 1);
    };
    depth(treap.roots[0]!, 1);
    expect(deepest).toBeLessThan(40);
    expect(treap.comparisons).toBeLessThan(400 * 40);
  });
});

describe('ContentTreap searches', () => {
  it('a key may abort a search; an insert must follow a failed search of the same tree', () => {
    const { value, treap, key } = makeTreap(false, 2);
    for (const [n, v] of [[0, 10], [1, 20], [2, 5]] as const) {
      value[n] = v;
      key.want = v;
      expect(treap.search(0, key)).toBe(NIL);
      treap.insertAtSearchPath(0, n);
    }
    key.want = 7;
    key.abortAt = treap.roots[0]!;
    expect(treap.search(0, key)).toBe(ABORTED);
    expect(() => treap.insertAtSearchPath(0, 3)).toThrow(/without a fresh failed search/);
    key.abortAt = NIL;
    expect(treap.search(1, key)).toBe(NIL);
    expect(() => treap.insertAtSearchPath(0, 3)).toThrow(/without a fresh failed search/);
    key.want = 10;
    expect(treap.search(0, key)).toBe(0);
    expect(() => treap.insertAtSearchPath(0, 3)).toThrow(/without a fresh failed search/);
    // Without parents, erase needs the search that found the node.
    key.want = 20;
    treap.search(0, key);
    expect(() => treap.erase(0, 2)).toThrow(/without parents/);
    expect(() => treap.replace(0, 1, 3)).toThrow(/needs parent links/);
  });

  it('contents changing under the tree break the order, never the shape; a rebuild keeps the nodes in place', () => {
    const { value, treap, key, byValue, inOrder } = makeTreap(false);
    for (let n = 0; n < 50; n++) {
      value[n] = n * 2;
      key.want = n * 2;
      treap.search(0, key);
      treap.insertAtSearchPath(0, n);
    }
    value[10] = 1000; // a page written while in the unstable tree
    expect(treap.check(0)).toEqual([]);
    expect(treap.check(0, byValue).join()).toMatch(/does not order before/);
    key.want = 1000;
    expect(treap.search(0, key)).toBe(NIL); // missed, like the kernel's unstable tree
    key.want = 1001;
    expect(treap.search(0, key)).toBe(NIL);
    treap.insertAtSearchPath(0, 60);
    value[60] = 1001;
    treap.rebuild(0, (n) => n !== 10);
    expect(treap.check(0)).toEqual([]);
    expect(inOrder()).not.toContain(1000);
    expect(treap.sizes[0]).toBe(50);
  });

  it('reset empties one tree and leaves the others', () => {
    const { value, treap, key, inOrder } = makeTreap(true, 2);
    for (const r of [0, 1]) {
      value[r] = r;
      key.want = r;
      treap.search(r, key);
      treap.insertAtSearchPath(r, r);
    }
    treap.reset(0);
    expect(inOrder(0)).toEqual([]);
    expect(inOrder(1)).toEqual([1]);
  });
});
