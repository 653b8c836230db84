import fc from 'fast-check';
import { PAGE_SIZE } from '@pagevisor/types';
import { MADV_DONTNEED, type ModelOp } from '@pagevisor/hypervisor';

/** What the op sequences of {@link modelOps} draw from. */
export interface ModelOpsOptions {
  /** Put domains in two trust groups (1 and 3 in group 0, 2 in group 1, new ones either). */
  readonly groups: boolean;
  /** Entries in the page content pool. */
  readonly contents: number;
  /** Entries in the tmem content pool. */
  readonly tmemContents: number;
  /** Whether the host has tmem: its ops are drawn more often then (else they are all refused). */
  readonly tmem: boolean;
  /**
   * Prime the sharing ops (default false): every other `share` first writes one non-zero content
   * over both of its pages, and every other `addPhysmap` first writes its source page, so that they
   * have frames of their own to nominate and equal contents (populated pages of a strategy with
   * `populateZero` map the zero frame, which cannot be nominated). A strategy that declined the
   * first write's frame leaves the second in a frame of its own, so the share merges two frames
   * and offers the survivor.
   */
  readonly primeSharing?: boolean;
}

/** A fork into a domain created for it: one create and one fork once expanded. */
interface ForkNew {
  readonly kind: 'forkNew';
  readonly parent: number;
  /** A child of 8 guest frames (too small for a parent using gfns above 7). */
  readonly small: boolean;
  /** A child in the other trust group. */
  readonly cross: boolean;
}
/** fork_reset of the `pick`-th fork made so far. */
interface ForkResetOf {
  readonly kind: 'forkResetOf';
  readonly pick: number;
}
/**
 * A page out and back in by hand: a one-byte write gives the page a private frame (only one can
 * be nominated), then pageOut, then paging_prep (with `data`, the pager's copy of content `content`).
 */
interface PageCycle {
  readonly kind: 'pageCycle';
  readonly dom: number;
  readonly gfn: number;
  readonly byte: number;
  readonly data: boolean;
  readonly content: number;
}
type RawOp = ModelOp | ForkNew | ForkResetOf | PageCycle;

/**
 * Random op sequences for the model check: three domains to start with, half populated (the
 * third populate-on-demand), then 20 to 150 ops that mostly land on live domains and populated
 * pages and sometimes on a domain that does not exist, a page not populated or out of range.
 * Forks go into a domain created for them (ids are known in advance: the hypervisor numbers
 * domains 1, 2, ... in creation order), fork resets to domains made forks earlier. Xen's paging
 * ops come alone and as a page written, paged out and brought back by hand.
 */
export function modelOps(options: ModelOpsOptions): fc.Arbitrary<ModelOp[]> {
  const dom = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 3, arbitrary: fc.integer({ min: 4, max: 8 }) });
  const gfn = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 7 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 17 }) });
  const content = fc.integer({ min: 0, max: options.contents - 1 });
  // Tmem ops mostly go to the first domains and their first pools, so that they find pages.
  const tdom = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 4, max: 8 }) });
  const pool = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 1 }) }, { weight: 1, arbitrary: fc.constant(2) });
  const object = fc.integer({ min: 0, max: 1 });
  const index = fc.integer({ min: 0, max: 3 });
  const group = options.groups ? fc.integer({ min: 0, max: 1 }) : fc.constant(0);
  const op = <K extends RawOp['kind'], T extends Record<string, fc.Arbitrary<unknown>>>(weight: number, kind: K, fields: T) => ({
    weight,
    arbitrary: fc.record({ kind: fc.constant(kind), ...fields }) as unknown as fc.Arbitrary<RawOp>,
  });
  const t = options.tmem ? 2 : 0;
  const raw: fc.Arbitrary<RawOp> = fc.oneof(
    op(1, 'create', { maxPages: fc.integer({ min: 4, max: 16 }), gfnCount: fc.constant(16), group }),
    op(4, 'populate', { dom, gfns: fc.uniqueArray(gfn, { maxLength: 4 }), order: fc.integer({ min: 0, max: 2 }), pod: fc.boolean() }),
    op(6, 'writePage', { dom, gfn, content }),
    op(4, 'writeBytes', { dom, gfn, offset: fc.integer({ min: 0, max: PAGE_SIZE }), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }) }),
    op(5, 'read', { dom, gfn }),
    op(2, 'decrease', { dom, gfns: fc.uniqueArray(gfn, { maxLength: 3 }), order: fc.integer({ min: 0, max: 1 }) }),
    op(2, 'share', { a: dom, gfnA: gfn, b: dom, gfnB: gfn }),
    op(1, 'destroy', { dom }),
    op(2, 'advise', { dom, start: fc.integer({ min: 0, max: 12 }), count: fc.integer({ min: 0, max: 6 }), mergeable: fc.boolean() }),
    op(5, 'scan', { wakes: fc.integer({ min: 1, max: 16 }) }),
    op(2, 'madvise', { dom, gfn: fc.integer({ min: 0, max: 14 }), count: fc.integer({ min: 0, max: 4 }), advice: fc.oneof({ weight: 9, arbitrary: fc.constant(MADV_DONTNEED) }, { weight: 1, arbitrary: fc.constant(99) }) }),
    op(2, 'forkNew', { parent: dom, small: fc.nat(3).map((n) => n === 0), cross: fc.nat(3).map((n) => n === 0) }),
    op(1, 'fork', { child: dom, parent: dom }),
    op(2, 'forkResetOf', { pick: fc.nat(7) }),
    op(2, 'rangeShare', { source: dom, client: dom, first: fc.integer({ min: 0, max: 10 }), last: fc.integer({ min: 0, max: 16 }) }),
    op(2, 'addPhysmap', { source: dom, gfnSource: gfn, client: dom, gfnClient: fc.integer({ min: 0, max: 16 }) }),
    op(1, 'pagingNominate', { dom, gfn }),
    op(1, 'pagingEvict', { dom, gfn }),
    op(2, 'pageOut', { dom, gfn }),
    op(1, 'pagingPrep', { dom, gfn, data: fc.nat(3).map((n) => n === 0), content }),
    op(2, 'pageCycle', { dom, gfn, byte: fc.integer({ min: 1, max: 255 }), data: fc.nat(3).map((n) => n === 0), content }),
    op(1, 'setSharing', { dom, enable: fc.boolean() }),
    op(2, 'pause', { dom, paused: fc.nat(3).map((n) => n === 0) }),
    op(2, 'claim', { dom, pages: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 16 })) }),
    op(1, 'setMaxPages', { dom, maxPages: fc.integer({ min: 4, max: 16 }) }),
    op(1 + t, 'tmemNewPool', { dom: tdom, persistent: fc.boolean() }),
    op(3 * (1 + t), 'tmemPut', { dom: tdom, pool, object, index, content: fc.integer({ min: 0, max: options.tmemContents - 1 }) }),
    op(3 * (1 + t), 'tmemGet', { dom: tdom, pool, object, index }),
    op(1 + t, 'tmemFlushPage', { dom: tdom, pool, object, index }),
    op(1 + t, 'tmemFlushObject', { dom: tdom, pool, object }),
    op(1 + t, 'tmemDestroyPool', { dom: tdom, pool }),
  );
  const ops = fc.array(raw, { minLength: 20, maxLength: 150, size: 'medium' }).map((r) => expand(r, options.groups));
  return options.primeSharing === true ? ops.map((o) => prime(o, options.contents)) : ops;
}

/** `ops` with every other share and add_physmap primed (see {@link ModelOpsOptions.primeSharing}). */
function prime(ops: readonly ModelOp[], contents: number): ModelOp[] {
  const nonZero = (n: number): number => 1 + (n % Math.max(1, contents - 1));
  let shares = 0;
  let physmaps = 0;
  return ops.flatMap((op): ModelOp[] => {
    if (op.kind === 'share' && shares++ % 2 === 0) {
      const content = nonZero(op.a + op.gfnA + op.b + op.gfnB);
      return [{ kind: 'writePage', dom: op.a, gfn: op.gfnA, content }, { kind: 'writePage', dom: op.b, gfn: op.gfnB, content }, op];
    }
    if (op.kind === 'addPhysmap' && physmaps++ % 2 === 0) {
      return [{ kind: 'writePage', dom: op.source, gfn: op.gfnSource, content: nonZero(op.source + op.gfnSource) }, op];
    }
    return [op];
  });
}

/** Start with three domains, half populated, so that most ops land somewhere; then `raw`, expanded. */
function expand(raw: readonly RawOp[], groups: boolean): ModelOp[] {
  const out: ModelOp[] = [];
  const groupOf = new Map<number, number>();
  const forks: number[] = [];
  let nextId = 1;
  const create = (maxPages: number, gfnCount: number, group: number): number => {
    out.push({ kind: 'create', maxPages, gfnCount, group });
    groupOf.set(nextId, group);
    return nextId++;
  };
  create(16, 16, 0);
  create(12, 16, groups ? 1 : 0);
  create(16, 16, 0);
  for (const d of [1, 2, 3]) out.push({ kind: 'populate', dom: d, gfns: [0, 2, 4, 6], order: 1, pod: d === 3 });
  for (const op of raw) {
    if (op.kind === 'create') {
      create(op.maxPages, op.gfnCount, op.group ?? 0);
    } else if (op.kind === 'forkNew') {
      const g = groupOf.get(op.parent) ?? 0;
      const child = create(16, op.small ? 8 : 16, groups && op.cross ? 1 - g : g);
      out.push({ kind: 'fork', child, parent: op.parent });
      forks.push(child);
    } else if (op.kind === 'pageCycle') {
      const { dom, gfn } = op;
      out.push({ kind: 'writeBytes', dom, gfn, offset: 0, bytes: [op.byte] }, { kind: 'pageOut', dom, gfn }, { kind: 'pagingPrep', dom, gfn, data: op.data, content: op.content });
    } else if (op.kind === 'forkResetOf') {
      out.push({ kind: 'forkReset', dom: forks.length === 0 ? 1 + (op.pick % 3) : forks[op.pick % forks.length]! });
    } else {
      out.push(op);
    }
  }
  return out;
}
