import { asDomId, asGfn, HypervisorError, PAGE_SIZE, type DomId, type Gfn } from '@pagevisor/types';
import type { Hypervisor } from './hypervisor.js';

/** One step of a model check. Domains are named by number; contents by index into a small pool. */
export type ModelOp =
  | { readonly kind: 'create'; readonly maxPages: number; readonly gfnCount: number }
  | { readonly kind: 'populate'; readonly dom: number; readonly gfns: readonly number[]; readonly order: number; readonly pod: boolean }
  | { readonly kind: 'writePage'; readonly dom: number; readonly gfn: number; readonly content: number }
  | { readonly kind: 'writeBytes'; readonly dom: number; readonly gfn: number; readonly offset: number; readonly bytes: readonly number[] }
  | { readonly kind: 'read'; readonly dom: number; readonly gfn: number }
  | { readonly kind: 'decrease'; readonly dom: number; readonly gfns: readonly number[]; readonly order: number }
  | { readonly kind: 'share'; readonly a: number; readonly gfnA: number; readonly b: number; readonly gfnB: number }
  | { readonly kind: 'destroy'; readonly dom: number }
  | { readonly kind: 'advise'; readonly dom: number; readonly start: number; readonly count: number; readonly mergeable: boolean }
  | { readonly kind: 'scan'; readonly wakes: number };

interface ModelDomain {
  readonly maxPages: number;
  readonly size: number;
  /** Content of every populated page. */
  readonly pages: Map<number, Uint8Array>;
}

/**
 * The reference model: a plain `Map` of page contents per domain, with the argument checks of
 * the hypervisor's operations. No sharing, no frames: what a guest should read, nothing else.
 */
export class ReferenceModel {
  readonly domains = new Map<number, ModelDomain>();
  private nextDom = 1;

  create(maxPages: number, gfnCount: number): number {
    const id = this.nextDom++;
    this.domains.set(id, { maxPages, size: gfnCount, pages: new Map() });
    return id;
  }

  /**
   * The outcomes the hypervisor may give `op`: an errno name, or undefined for success. Ops that
   * need frames may also fail with ENOMEM; sharing may also be refused with EINVAL when a page has
   * no frame of its own to share (zero frame, populate-on-demand) or the contents differ.
   */
  acceptable(op: ModelOp): ReadonlyArray<string | undefined> {
    const expected = this.expectedError(op);
    // Nominating a page with no frame of its own (zero frame, populate-on-demand) is EINVAL
    // whatever follows; whether a page has one depends on the strategy, not on the model.
    if (op.kind === 'share') return expected === 'ESRCH' && this.domains.has(op.a) ? ['ESRCH', 'EINVAL'] : expected === undefined ? [undefined, 'EINVAL'] : [expected];
    if (expected !== undefined) return [expected];
    // Unmerging (MADV_UNMERGEABLE) needs frames too.
    if (op.kind === 'populate' || op.kind === 'writePage' || op.kind === 'writeBytes' || op.kind === 'advise') return [undefined, 'ENOMEM'];
    return [undefined];
  }

  private expectedError(op: ModelOp): string | undefined {
    if (op.kind === 'create') return undefined;
    if (op.kind === 'share') {
      // Nominate a, nominate b, share: the first refusal wins.
      const a = this.domains.get(op.a);
      if (a === undefined) return 'ESRCH';
      if (op.gfnA >= a.size || !a.pages.has(op.gfnA)) return 'EINVAL';
      const b = this.domains.get(op.b);
      if (b === undefined) return 'ESRCH';
      if (op.gfnB >= b.size || !b.pages.has(op.gfnB)) return 'EINVAL';
      return undefined;
    }
    if (op.kind === 'scan') return undefined;
    const d = this.domains.get(op.dom);
    if (d === undefined) return 'ESRCH';
    switch (op.kind) {
      case 'destroy':
        return undefined;
      case 'advise':
        return op.start + op.count <= d.size ? undefined : 'EINVAL';
      case 'read':
      case 'writePage':
        return op.gfn < d.size && d.pages.has(op.gfn) ? undefined : 'EINVAL';
      case 'writeBytes':
        return op.gfn < d.size && d.pages.has(op.gfn) && op.offset + op.bytes.length <= PAGE_SIZE ? undefined : 'EINVAL';
      case 'populate':
      case 'decrease': {
        const n = 1 << op.order;
        const seen = new Set<number>();
        for (const first of op.gfns) {
          if (first + n > d.size || first % n !== 0 || seen.has(first)) return 'EINVAL';
          seen.add(first);
          for (let g = first; g < first + n; g++) {
            if (op.kind === 'populate' && d.pages.has(g)) return 'EEXIST';
            if (op.kind === 'decrease' && !d.pages.has(g)) return 'EINVAL';
          }
        }
        if (op.kind === 'populate' && d.pages.size + op.gfns.length * n > d.maxPages) return 'E2BIG';
        return undefined;
      }
    }
  }

  /** Applies a successful `op`. */
  apply(op: ModelOp, page: (content: number) => Uint8Array): void {
    switch (op.kind) {
      case 'create':
        this.create(op.maxPages, op.gfnCount);
        return;
      case 'populate':
        for (const first of op.gfns) {
          for (let g = first; g < first + (1 << op.order); g++) this.domains.get(op.dom)!.pages.set(g, new Uint8Array(PAGE_SIZE));
        }
        return;
      case 'decrease':
        for (const first of op.gfns) {
          for (let g = first; g < first + (1 << op.order); g++) this.domains.get(op.dom)!.pages.delete(g);
        }
        return;
      case 'writePage':
        this.domains.get(op.dom)!.pages.set(op.gfn, page(op.content).slice());
        return;
      case 'writeBytes':
        this.domains.get(op.dom)!.pages.get(op.gfn)!.set(op.bytes, op.offset);
        return;
      case 'destroy':
        this.domains.delete(op.dom);
        return;
      case 'read':
      case 'share':
      case 'advise':
      case 'scan':
        return;
    }
  }
}

/** Options of {@link checkAgainstModel}. */
export interface ModelCheckOptions {
  /** Content of pool entry `i` (PAGE_SIZE bytes); a small pool makes pages collide and share. */
  readonly page: (content: number) => Uint8Array;
  /** Called after every step, e.g. to watch a strategy's own counters. */
  readonly afterStep?: (hv: Hypervisor) => void;
  /** True when the swap device injects faults: accesses may then fail with EIO (and EAGAIN). */
  readonly swapFaults?: boolean;
}

/** Frames `op` may need at most, so that ENOMEM is only accepted when fewer are free. */
function framesNeeded(op: ModelOp): number {
  if (op.kind === 'writePage' || op.kind === 'writeBytes') return 1;
  if (op.kind === 'populate') return op.gfns.length << op.order;
  return Infinity; // advise may unmerge any number of pages
}

/**
 * Runs `ops` against `hv` (fresh, with no domains) and against the reference model. After every
 * step: a refused op must carry the errno the model expects (see {@link ReferenceModel.acceptable}) and leave every page as it was; every read must equal the model's; the audit must be
 * clean. At the end every page of every domain is compared. Throws an Error naming the step on
 * the first mismatch.
 */
/** What a model check exercised: a check that shared nothing proved little. */
export interface ModelCheckSummary {
  /** Operations the hypervisor carried out. */
  readonly applied: number;
  /** Operations it refused (with an errno the model accepted). */
  readonly refused: number;
  /** Most extra mappings of shared frames (pagesSharing) seen after any step. */
  readonly peakPagesSharing: number;
  /** Most pages mapping the zero frame seen after any step. */
  readonly peakZeroPages: number;
}

export function checkAgainstModel(hv: Hypervisor, ops: readonly ModelOp[], options: ModelCheckOptions): ModelCheckSummary {
  const model = new ReferenceModel();
  const buf = new Uint8Array(PAGE_SIZE);
  let applied = 0;
  let peakPagesSharing = 0;
  let peakZeroPages = 0;
  ops.forEach((op, step) => {
    const where = `step ${step} ${JSON.stringify(op)}`;
    const acceptable = model.acceptable(op);
    const before = snapshotState(hv);
    const freeBefore = hv.frames.freeFrames;
    let errno: string | undefined;
    try {
      runOp(hv, op, options, buf);
    } catch (e) {
      if (!(e instanceof HypervisorError)) throw new Error(`${where}: threw ${String(e)}`);
      errno = e.errnoName;
    }
    // With swap, an access may meet an injected device fault (EIO, and EAGAIN while paused);
    // an allocation may evict pages before it is refused with ENOMEM.
    const swapping = hv.pager !== undefined;
    const access = op.kind === 'read' || op.kind === 'writePage' || op.kind === 'writeBytes';
    if (options.swapFaults === true && access && (errno === 'EIO' || errno === 'EAGAIN') && acceptable.includes(undefined)) {
      // The fault clears before the next step.
      for (const d of hv.domains()) hv.unpauseDomain(d.id);
    } else if (!acceptable.includes(errno)) {
      const wanted = acceptable.map((e) => e ?? 'success').join(' or ');
      throw new Error(`${where}: hypervisor ${errno ?? 'succeeded'}, model expects ${wanted}`);
    }
    if (errno === 'ENOMEM' && freeBefore >= framesNeeded(op)) {
      throw new Error(`${where}: ENOMEM with ${freeBefore} frames free`);
    }
    if (errno === undefined) {
      applied++;
      model.apply(op, options.page);
      if (op.kind === 'read' && !equalBytes(buf, model.domains.get(op.dom)!.pages.get(op.gfn)!)) {
        throw new Error(`${where}: read differs from what was last written`);
      }
    } else if (op.kind !== 'share') {
      // A refused op changes nothing (share is two nominations and a share: the nominations
      // stand; with swap, pages evicted to make room stay evicted, which no guest can tell).
      if (!(swapping && (errno === 'ENOMEM' || errno === 'EIO' || errno === 'EAGAIN')) && snapshotState(hv) !== before) {
        throw new Error(`${where}: refused with ${errno} but the state changed`);
      }
      comparePages(hv, model, buf, where);
    }
    const problems = hv.audit();
    if (problems.length > 0) throw new Error(`${where}: audit: ${problems.join('; ')}`);
    const t = hv.totals();
    peakPagesSharing = Math.max(peakPagesSharing, t.pagesSharing);
    peakZeroPages = Math.max(peakZeroPages, t.zeroPages);
    options.afterStep?.(hv);
  });
  comparePages(hv, model, buf, 'end');
  return { applied, refused: ops.length - applied, peakPagesSharing, peakZeroPages };
}

function comparePages(hv: Hypervisor, model: ReferenceModel, buf: Uint8Array, where: string): void {
  for (const [dom, d] of model.domains) {
    for (const [gfn, content] of d.pages) {
      readRetrying(hv, asDomId(dom), asGfn(gfn), buf);
      if (!equalBytes(buf, content)) throw new Error(`${where}: dom ${dom} gfn ${gfn} differs from what was last written`);
    }
  }
}

/**
 * Reads a whole page; an injected swap-in fault (EIO) changes nothing, so unpause and try again
 * (a fault that never clears is a failure).
 */
function readRetrying(hv: Hypervisor, dom: DomId, gfn: Gfn, buf: Uint8Array): void {
  for (let attempt = 0; ; attempt++) {
    try {
      hv.readPage(dom, gfn, 0, buf, 0, PAGE_SIZE);
      return;
    } catch (e) {
      if (!(e instanceof HypervisorError) || e.errnoName !== 'EIO' || attempt === 50) throw e;
      hv.unpauseDomain(dom);
    }
  }
}

/**
 * Everything a refused operation must leave as it was: every figure of the host and its domains
 * (simulated CPU included) and every p2m entry (type and frame) of every domain.
 */
export function snapshotState(hv: Hypervisor): string {
  const tables = hv.domains().map((d) => {
    let digest = 7;
    for (let g = 0; g < d.table.size; g++) {
      digest = (Math.imul(digest, 31) + d.table.type(asGfn(g)) * 0x10001 + d.table.mfn(asGfn(g))) | 0;
    }
    return digest;
  });
  return JSON.stringify({ totals: hv.totals(), domains: hv.allDomainStats(), tables, free: hv.frames.freeFrames });
}
function runOp(hv: Hypervisor, op: ModelOp, options: ModelCheckOptions, buf: Uint8Array): void {
  const dom = (n: number): DomId => asDomId(n);
  switch (op.kind) {
    case 'create':
      // Every domain starts mergeable, as QEMU marks guest RAM: scanning strategies scan it.
      hv.setDomainMergeable(hv.createDomain({ maxPages: op.maxPages, gfnCount: op.gfnCount }), true);
      return;
    case 'populate':
      hv.populatePhysmap(dom(op.dom), op.gfns, op.order, op.pod ? 1 << 16 : 0);
      return;
    case 'decrease':
      hv.decreaseReservation(dom(op.dom), op.gfns, op.order);
      return;
    case 'writePage':
      hv.writePage(dom(op.dom), asGfn(op.gfn), 0, options.page(op.content), 0, PAGE_SIZE);
      return;
    case 'writeBytes':
      hv.writePage(dom(op.dom), asGfn(op.gfn), op.offset, Uint8Array.from(op.bytes), 0, op.bytes.length);
      return;
    case 'read':
      hv.readPage(dom(op.dom), asGfn(op.gfn), 0, buf, 0, PAGE_SIZE);
      return;
    case 'share': {
      // Nominate both, then share; a refused share must leave both pages readable as before.
      const ha = hv.nominateGfn(dom(op.a), asGfn(op.gfnA));
      const hb = hv.nominateGfn(dom(op.b), asGfn(op.gfnB));
      hv.share(dom(op.a), asGfn(op.gfnA), ha, dom(op.b), asGfn(op.gfnB), hb);
      return;
    }
    case 'destroy':
      hv.destroyDomain(dom(op.dom));
      return;
    case 'advise':
      hv.advise(dom(op.dom), asGfn(op.start), op.count, op.mergeable);
      return;
    case 'scan':
      // Scanning strategies: run `wakes` wake-ups, as the simulated clock would.
      for (let i = 0; i < op.wakes && hv.dedup.wake !== undefined; i++) {
        const t = hv.dedup.nextWakeNs?.() ?? Infinity;
        if (!Number.isFinite(t)) break;
        hv.dedup.wake(t);
      }
      return;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
