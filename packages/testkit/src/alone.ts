import fc from 'fast-check';
import { HypervisorError, INVALID_MFN, type EvictionPolicy, type FrameAllocator, type Mfn } from '@pagevisor/types';

/** A failed step of a part alone (what the kit found, not what the part threw). */
class StepError extends Error {
  override readonly name = 'StepError';
}

/** What a sequence run on a part alone did. */
export interface AloneRun {
  /** Operations carried out, by kind. */
  readonly applied: Readonly<Record<string, number>>;
  /** Operations refused, by how (`INVALID_MFN`, an errno). */
  readonly refused: Readonly<Record<string, number>>;
  /** Allocators: the orders of the blocks handed out. */
  readonly orders: readonly number[];
}

/** One step of an allocator alone: allocate a block, or free the `pick`-th block held. */
export type AllocatorOp = { readonly kind: 'alloc'; readonly order: number } | { readonly kind: 'free'; readonly pick: number };

/** Random alloc/free sequences, mostly of order 0 (what the host asks), some of orders up to 6. */
export function allocatorOps(): fc.Arbitrary<AllocatorOp[]> {
  const order = fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 4, max: 6 }) });
  const op = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('alloc' as const), order }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat(63) }) },
  );
  return fc.array(op, { minLength: 1, maxLength: 200, size: 'medium' });
}

/**
 * Runs `ops` on a new allocator of `frames` frames against a model of its own: which frames are
 * free. The `FrameAllocator` contract: it manages exactly `frames` frames, all free at start;
 * `alloc(order)` returns the first of 2^order contiguous frames, all free until then and within
 * the machine, or INVALID_MFN (never while any frame is free, for order 0: the host allocates
 * order 0 only); an order it does not hand out may be refused with HypervisorError EINVAL
 * (changing nothing); `free(mfn, order)` takes back a block as allocated; after every step
 * `freeFrames` is exact and `isFree` right for every frame. At the end every block is freed and
 * every frame must be free again.
 * @throws Error naming the step and what was wrong.
 */
export function runAllocatorAlone(make: () => FrameAllocator, frames: number, ops: readonly AllocatorOp[]): AloneRun {
  const a = make();
  const fail = (where: string, what: string): never => {
    throw new StepError(`${where}: ${what}`);
  };
  if (typeof a.name !== 'string' || a.name === '') fail('create', `name is ${JSON.stringify(a.name)}, not a non-empty string`);
  if (a.totalFrames !== frames) fail('create', `totalFrames is ${a.totalFrames} for a machine of ${frames} frames`);
  const free = new Uint8Array(frames).fill(1);
  const heldBy = new Int32Array(frames).fill(-1);
  let freeCount = frames;
  const blocks: Array<{ mfn: number; order: number }> = [];
  const applied: Record<string, number> = {};
  const refused: Record<string, number> = {};
  const orders = new Set<number>();
  const verify = (where: string): void => {
    if (a.freeFrames !== freeCount) fail(where, `freeFrames is ${a.freeFrames}, but ${freeCount} frames are free`);
    for (let m = 0; m < frames; m++) {
      const f = a.isFree(m as Mfn);
      if (f !== (free[m] === 1)) fail(where, `isFree(${m}) is ${f}, but frame ${m} is ${free[m] === 1 ? 'free' : `allocated (handed out at step ${heldBy[m]})`}`);
    }
  };
  verify('create');
  ops.forEach((op, step) => {
    const where = `step ${step} ${JSON.stringify(op)}`;
    try {
      allocatorStep(op, step, where);
    } catch (e) {
      if (e instanceof StepError) throw e;
      fail(where, `threw ${String(e)}`);
    }
  });
  for (const b of blocks.splice(0)) {
    const where = `end: free(${b.mfn}, ${b.order})`;
    try {
      a.free(b.mfn as Mfn, b.order);
    } catch (e) {
      fail(where, `free threw ${String(e)}`);
    }
    for (let f = b.mfn; f < b.mfn + 2 ** b.order; f++) free[f] = 1;
    freeCount += 2 ** b.order;
    verify(where);
  }
  return { applied, refused, orders: [...orders].sort((x, y) => x - y) };

  function allocatorStep(op: AllocatorOp, step: number, where: string): void {
    if (op.kind === 'alloc') {
      const n = 2 ** op.order;
      let m: number;
      try {
        m = a.alloc(op.order);
      } catch (e) {
        if (op.order > 0 && e instanceof HypervisorError && e.errnoName === 'EINVAL') {
          refused['EINVAL'] = (refused['EINVAL'] ?? 0) + 1;
          verify(where);
          return;
        }
        return fail(where, `alloc threw ${String(e)}`);
      }
      if (m === INVALID_MFN) {
        if (op.order === 0 && freeCount > 0) fail(where, `alloc(0) returned INVALID_MFN with ${freeCount} frames free`);
        refused['INVALID_MFN'] = (refused['INVALID_MFN'] ?? 0) + 1;
      } else {
        if (!(Number.isInteger(m) && m >= 0 && m + n <= frames)) fail(where, `alloc(${op.order}) returned ${String(m)}: the block of ${n} frames from it is not within the ${frames} frames of the machine`);
        for (let f = m; f < m + n; f++) {
          if (free[f] !== 1) fail(where, `alloc(${op.order}) handed out frame ${f} (block ${m}..${m + n - 1}), which was handed out at step ${heldBy[f]} and not freed since`);
        }
        for (let f = m; f < m + n; f++) {
          free[f] = 0;
          heldBy[f] = step;
        }
        freeCount -= n;
        blocks.push({ mfn: m, order: op.order });
        applied['alloc'] = (applied['alloc'] ?? 0) + 1;
        orders.add(op.order);
      }
    } else {
      if (blocks.length === 0) return;
      const [b] = blocks.splice(op.pick % blocks.length, 1);
      try {
        a.free(b!.mfn as Mfn, b!.order);
      } catch (e) {
        fail(`${where} (free(${b!.mfn}, ${b!.order}))`, `free threw ${String(e)}`);
      }
      for (let f = b!.mfn; f < b!.mfn + 2 ** b!.order; f++) {
        free[f] = 1;
        heldBy[f] = -1;
      }
      freeCount += 2 ** b!.order;
      applied['free'] = (applied['free'] ?? 0) + 1;
    }
    verify(where);
  }
}

/**
 * One step of an eviction policy alone, as the host drives it: `access` (insert a frame not
 * tracked, touch one tracked), `remove` (tracked or not: the host removes frames it may never have
 * inserted), `victim`, `evict` (victim, then remove it), `reset`.
 */
export type PolicyOp =
  | { readonly kind: 'access'; readonly mfn: number }
  | { readonly kind: 'remove'; readonly mfn: number }
  | { readonly kind: 'victim' }
  | { readonly kind: 'evict' }
  | { readonly kind: 'reset' };

/** Random policy sequences over frames below `frames`. */
export function policyOps(frames: number): fc.Arbitrary<PolicyOp[]> {
  const mfn = fc.integer({ min: 0, max: frames - 1 });
  const op = fc.oneof(
    { weight: 8, arbitrary: fc.record({ kind: fc.constant('access' as const), mfn }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), mfn }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('victim' as const) }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('evict' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset' as const) }) },
  ) as fc.Arbitrary<PolicyOp>;
  return fc.array(op, { minLength: 1, maxLength: 200, size: 'medium' });
}

/**
 * Runs `ops` on a new policy against a model of its own: the set of frames tracked. The
 * `EvictionPolicy` contract: `victim()` returns a tracked frame (inserted and not removed since),
 * and INVALID_MFN exactly when none is tracked; `size` is the number tracked after every step;
 * `remove` of a frame not tracked changes nothing; `reset` forgets every frame.
 * @throws Error naming the step and what was wrong.
 */
export function runPolicyAlone(make: () => EvictionPolicy, ops: readonly PolicyOp[]): AloneRun {
  const p = make();
  const fail = (where: string, what: string): never => {
    throw new StepError(`${where}: ${what}`);
  };
  if (typeof p.name !== 'string' || p.name === '') fail('create', `name is ${JSON.stringify(p.name)}, not a non-empty string`);
  const tracked = new Set<number>();
  const given = new Set<number>();
  const applied: Record<string, number> = {};
  const refused: Record<string, number> = {};
  const count = (k: string) => (applied[k] = (applied[k] ?? 0) + 1);
  const victim = (where: string): Mfn => {
    const v = p.victim();
    if (v === INVALID_MFN) {
      if (tracked.size > 0) fail(where, `victim() returned INVALID_MFN with ${tracked.size} frames tracked`);
      refused['INVALID_MFN'] = (refused['INVALID_MFN'] ?? 0) + 1;
    } else if (!tracked.has(v)) {
      fail(where, `victim() returned frame ${String(v)}, which ${given.has(v) ? 'was removed since it was inserted' : 'it was never given'} (tracked: ${[...tracked].sort((x, y) => x - y).join(', ') || 'none'})`);
    }
    return v;
  };
  const verify = (where: string): void => {
    if (p.size !== tracked.size) fail(where, `size is ${p.size}, but ${tracked.size} frames are tracked`);
  };
  verify('create');
  ops.forEach((op, step) => {
    const where = `step ${step} ${JSON.stringify(op)}`;
    try {
      policyStep(op, where);
    } catch (e) {
      if (e instanceof StepError) throw e;
      fail(where, `threw ${String(e)}`);
    }
  });
  return { applied, refused, orders: [] };

  function policyStep(op: PolicyOp, where: string): void {
    switch (op.kind) {
      case 'access':
        if (tracked.has(op.mfn)) {
          p.touch(op.mfn as Mfn);
          count('touch');
        } else {
          p.insert(op.mfn as Mfn);
          tracked.add(op.mfn);
          given.add(op.mfn);
          count('insert');
        }
        break;
      case 'remove':
        p.remove(op.mfn as Mfn);
        tracked.delete(op.mfn);
        count('remove');
        break;
      case 'victim':
        if (victim(where) !== INVALID_MFN) count('victim');
        break;
      case 'evict': {
        const v = victim(where);
        if (v !== INVALID_MFN) {
          p.remove(v);
          tracked.delete(v);
          count('evict');
        }
        break;
      }
      case 'reset':
        p.reset();
        tracked.clear();
        count('reset');
        break;
    }
    verify(where);
  }
}
