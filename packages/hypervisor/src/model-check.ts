import { Buffer } from 'node:buffer';
import { Fingerprinter } from '@pagevisor/machine';
import { asDomId, asGfn, asMfn, HypervisorError, PAGE_SIZE, type DomId, type Gfn, type Mfn } from '@pagevisor/types';
import type { Hypervisor } from './hypervisor.js';
import { MADV_DONTNEED } from './memory-ops.js';
import { observableDigest } from './observable-state.js';

/**
 * One step of a model check. Domains are named by number (the ids the hypervisor gives out: 1,
 * 2, ... in creation order, never reused); contents by index into a small pool.
 */
export type ModelOp =
  | { readonly kind: 'create'; readonly maxPages: number; readonly gfnCount: number; readonly group?: number }
  | { readonly kind: 'populate'; readonly dom: number; readonly gfns: readonly number[]; readonly order: number; readonly pod: boolean }
  | { readonly kind: 'writePage'; readonly dom: number; readonly gfn: number; readonly content: number }
  | { readonly kind: 'writeBytes'; readonly dom: number; readonly gfn: number; readonly offset: number; readonly bytes: readonly number[] }
  | { readonly kind: 'read'; readonly dom: number; readonly gfn: number }
  | { readonly kind: 'decrease'; readonly dom: number; readonly gfns: readonly number[]; readonly order: number }
  | { readonly kind: 'share'; readonly a: number; readonly gfnA: number; readonly b: number; readonly gfnB: number }
  | { readonly kind: 'destroy'; readonly dom: number }
  | { readonly kind: 'advise'; readonly dom: number; readonly start: number; readonly count: number; readonly mergeable: boolean }
  | { readonly kind: 'scan'; readonly wakes: number }
  /** madvise with `advice` (MADV_DONTNEED, or an unknown value to be refused). */
  | { readonly kind: 'madvise'; readonly dom: number; readonly gfn: number; readonly count: number; readonly advice: number }
  | { readonly kind: 'fork'; readonly child: number; readonly parent: number }
  | { readonly kind: 'forkReset'; readonly dom: number }
  | { readonly kind: 'rangeShare'; readonly source: number; readonly client: number; readonly first: number; readonly last: number }
  /** Nominates the source page, then maps its frame at the client's gfn. */
  | { readonly kind: 'addPhysmap'; readonly source: number; readonly gfnSource: number; readonly client: number; readonly gfnClient: number }
  | { readonly kind: 'setSharing'; readonly dom: number; readonly enable: boolean }
  | { readonly kind: 'pause'; readonly dom: number; readonly paused: boolean }
  | { readonly kind: 'claim'; readonly dom: number; readonly pages: number }
  | { readonly kind: 'setMaxPages'; readonly dom: number; readonly maxPages: number }
  /** Xen's paging ops one at a time (a nominate, an evict, a prep), or `pageOut`: nominate then evict. */
  | { readonly kind: 'pagingNominate' | 'pagingEvict' | 'pageOut'; readonly dom: number; readonly gfn: number }
  /** paging_prep; with `data`, the pager supplies the page as content `content` (the guest then reads that). */
  | { readonly kind: 'pagingPrep'; readonly dom: number; readonly gfn: number; readonly data: boolean; readonly content: number }
  | { readonly kind: 'tmemNewPool'; readonly dom: number; readonly persistent: boolean }
  | { readonly kind: 'tmemDestroyPool'; readonly dom: number; readonly pool: number }
  /** Object ids are [object, 0, 0]; `content` indexes the tmem content pool. */
  | { readonly kind: 'tmemPut'; readonly dom: number; readonly pool: number; readonly object: number; readonly index: number; readonly content: number }
  | { readonly kind: 'tmemGet'; readonly dom: number; readonly pool: number; readonly object: number; readonly index: number }
  | { readonly kind: 'tmemFlushPage'; readonly dom: number; readonly pool: number; readonly object: number; readonly index: number }
  | { readonly kind: 'tmemFlushObject'; readonly dom: number; readonly pool: number; readonly object: number };

/** Ops that share pages on the toolstack's explicit request (not the dedup strategy's choice). */
const EXPLICIT_SHARING = new Set<ModelOp['kind']>(['share', 'addPhysmap', 'rangeShare', 'fork', 'forkReset']);
/** Guest loads and stores: refused with EAGAIN while the domain is paused. */
const ACCESSES = new Set<ModelOp['kind']>(['read', 'writePage', 'writeBytes']);
/** Tmem pools a domain may hold at once. */
const TMEM_POOLS = 16;

interface ModelPool {
  readonly persistent: boolean;
  /** Content index of every page, by `object:index`; an ephemeral pool's may be gone already. */
  readonly pages: Map<string, number>;
}

interface ModelDomain {
  maxPages: number;
  readonly size: number;
  /** Content of every populated page. */
  pages: Map<number, Uint8Array>;
  readonly group: number;
  sharing: boolean;
  paused: boolean;
  /** Frames claimed and not yet allocated. */
  claim: number;
  parent: number | undefined;
  forks: number;
  readonly pools: Map<number, ModelPool>;
}

/** What the reference model is told about the host (nothing about frames). */
export interface ReferenceModelOptions {
  /** Whether populate maps the zero frame (the dedup strategy's `populateZero`): such populates use no frame, nor claim. */
  readonly populateZero?: boolean;
  /** Slots of the tmem store (undefined: no tmem, its ops are EOPNOTSUPP). */
  readonly tmemPages?: number;
  /** Whether the host pages to swap: forks copying swap slots may then fail with ENOSPC or EIO. */
  readonly swap?: boolean;
  /**
   * What the host's frames hold (default `'bytes'`). With `'fingerprints'` (a FingerprintMemory)
   * a guest reads back bytes generated from its page's fingerprint, not what it wrote: the model
   * then keeps every page in that canonical form, bytes(F) of the fingerprint F its frame holds
   * (see `Fingerprinter`): a whole-page store (a write, a page the pager supplies) makes it
   * bytes(H(page)); a partial one bytes(afterWrite(H(page), offset, bytes)), H of a canonical
   * page being its F. Tmem keeps the bytes put (they are not in frames).
   */
  readonly contents?: 'bytes' | 'fingerprints';
}

/**
 * The reference model: a plain `Map` of page contents per domain, with the argument checks of
 * the hypervisor's operations and the per-domain flags they depend on (sharing, pause, claim,
 * fork links, trust group), plus a map of tmem pool contents. No sharing, no frames: what a guest
 * should read, nothing else.
 */
export class ReferenceModel {
  readonly domains = new Map<number, ModelDomain>();
  private nextDom = 1;
  private readonly options: ReferenceModelOptions;
  /** The content functions, when frames hold fingerprints (null: bytes). */
  private readonly fingerprints: Fingerprinter | null;

  constructor(options: ReferenceModelOptions = {}) {
    this.options = options;
    this.fingerprints = options.contents === 'fingerprints' ? new Fingerprinter() : null;
  }

  /** The page a frame holds once `page` is stored in it whole: a copy of it, or with fingerprints bytes(H(page)). */
  private stored(page: Uint8Array): Uint8Array {
    const fp = this.fingerprints;
    if (fp === null) return page.slice();
    fp.ofPage(page);
    const out = new Uint8Array(PAGE_SIZE);
    fp.bytes(fp.lo, fp.hi, 0, out, 0, PAGE_SIZE);
    return out;
  }

  /** Stores `bytes` at `offset` of model page `page`, as the host's frame takes the store. */
  private storeBytes(page: Uint8Array, offset: number, bytes: readonly number[]): void {
    const fp = this.fingerprints;
    if (fp === null) {
      page.set(bytes, offset);
      return;
    }
    const src = Uint8Array.from(bytes);
    fp.ofPage(page); // the page is canonical: this is the fingerprint its frame holds
    fp.afterWrite(fp.lo, fp.hi, offset, src, 0, src.length);
    fp.bytes(fp.lo, fp.hi, 0, page, 0, PAGE_SIZE);
  }

  create(maxPages: number, gfnCount: number, group = 0): number {
    const id = this.nextDom++;
    this.domains.set(id, { maxPages, size: gfnCount, pages: new Map(), group, sharing: true, paused: false, claim: 0, parent: undefined, forks: 0, pools: new Map() });
    return id;
  }

  /** Frames claimed by every domain and not yet allocated. */
  outstandingClaims(): number {
    let n = 0;
    for (const d of this.domains.values()) n += d.claim;
    return n;
  }

  /** Frames a successful populate takes (0 for populate-on-demand or zero-frame populates). */
  populateFrames(op: Extract<ModelOp, { kind: 'populate' }>): number {
    return op.pod || this.options.populateZero === true ? 0 : op.gfns.length << op.order;
  }

  /** Distinct contents held in persistent tmem pools, over all domains. */
  persistentContents(except?: { readonly pages: Map<string, number>; readonly key: string }): Set<number> {
    const s = new Set<number>();
    for (const d of this.domains.values()) {
      for (const p of d.pools.values()) {
        if (!p.persistent) continue;
        for (const [key, c] of p.pages) if (p.pages !== except?.pages || key !== except.key) s.add(c);
      }
    }
    return s;
  }

  /**
   * The outcomes the hypervisor may give `op`: an errno name, or undefined for success. Ops that
   * need frames may also fail with ENOMEM; nominating a page may also be refused with EINVAL when
   * it has no frame of its own to share (zero frame, populate-on-demand, paged out): whether it
   * has one depends on the strategy, not on the model. `freeFrames` (the host's, before the op)
   * makes claim_pages' ENOMEM exact.
   */
  acceptable(op: ModelOp, freeFrames?: number): ReadonlyArray<string | undefined> {
    const maybe: string[] = [];
    const expected = this.expectedError(op, maybe, freeFrames);
    const out = new Set<string | undefined>([expected, ...maybe]);
    // The frames involved may also be mapped by a third domain with sharing disabled, which the
    // model cannot tell (it knows no frames); which refusal comes first is then not its business.
    if (EXPLICIT_SHARING.has(op.kind) && expected !== 'ESRCH' && [...this.domains.values()].some((d) => !d.sharing)) out.add('EOPNOTSUPP');
    if (expected === undefined) {
      // Unmerging (MADV_UNMERGEABLE) needs frames too.
      if (op.kind === 'populate' || op.kind === 'writePage' || op.kind === 'writeBytes' || op.kind === 'advise') out.add('ENOMEM');
      // A fork copies paged-out pages' swap slots, which may fail.
      if ((op.kind === 'fork' || op.kind === 'forkReset') && this.options.swap === true) {
        out.add('ENOSPC');
        out.add('EIO');
      }
    }
    return [...out];
  }

  private expectedError(op: ModelOp, maybe: string[], freeFrames: number | undefined): string | undefined {
    switch (op.kind) {
      case 'create':
      case 'scan':
        return undefined;
      case 'share': {
        // Nominate a, nominate b, share: the first refusal wins.
        const a = this.domains.get(op.a);
        const b = this.domains.get(op.b);
        const e = this.nominateError(op.a, op.gfnA, maybe) ?? this.nominateError(op.b, op.gfnB, maybe);
        if (e !== undefined) return e;
        if (a!.group !== b!.group) return 'EPERM';
        return equalBytes(a!.pages.get(op.gfnA)!, b!.pages.get(op.gfnB)!) ? undefined : 'EINVAL';
      }
      case 'addPhysmap': {
        const e = this.nominateError(op.source, op.gfnSource, maybe);
        if (e !== undefined) return e;
        const s = this.domains.get(op.source)!;
        const c = this.domains.get(op.client);
        if (c === undefined) return 'ESRCH';
        if (op.gfnClient >= c.size) return 'EINVAL';
        if (!c.sharing) return 'EOPNOTSUPP';
        if (s.group !== c.group) return 'EPERM';
        if (c.pages.has(op.gfnClient)) return 'EEXIST';
        return c.pages.size + 1 > c.maxPages ? 'E2BIG' : undefined;
      }
      case 'rangeShare': {
        const s = this.domains.get(op.source);
        const c = this.domains.get(op.client);
        if (s === undefined || c === undefined) return 'ESRCH';
        if (s === c || op.last < op.first || op.last >= Math.min(s.size, c.size)) return 'EINVAL';
        return this.mayShareError(s, c);
      }
      case 'fork': {
        const c = this.domains.get(op.child);
        const p = this.domains.get(op.parent);
        if (c === undefined || p === undefined) return 'ESRCH';
        if (c === p) return 'EINVAL';
        const e = this.mayShareError(p, c);
        if (e !== undefined) return e;
        if (c.parent !== undefined || c.forks > 0 || c.pages.size > 0) return 'EBUSY';
        if (Math.max(-1, ...p.pages.keys()) >= c.size) return 'EINVAL';
        return c.maxPages < p.pages.size ? 'E2BIG' : undefined;
      }
      default:
        break;
    }
    const d = this.domains.get(op.dom);
    if (d === undefined) return 'ESRCH';
    switch (op.kind) {
      case 'destroy':
        return d.forks > 0 ? 'EBUSY' : undefined;
      case 'forkReset': {
        // Refused as a fork would be: the parent may have grown past the child's guest frames or
        // max_pages, or either may have sharing disabled since.
        // Which of these refusals comes first is not the model's business: any that applies will do.
        if (d.parent === undefined) return 'EINVAL';
        const p = this.domains.get(d.parent)!;
        const errors = [this.mayShareError(p, d), Math.max(-1, ...p.pages.keys()) >= d.size ? 'EINVAL' : undefined, d.maxPages < p.pages.size ? 'E2BIG' : undefined];
        const found = errors.filter((e) => e !== undefined);
        maybe.push(...found.slice(1));
        return found[0];
      }
      case 'pagingNominate':
      case 'pagingEvict':
      case 'pageOut':
      case 'pagingPrep':
        if (op.gfn >= d.size) return 'EINVAL';
        if (this.options.swap !== true) return 'EOPNOTSUPP';
        // Whether the page is in the state the op needs (private, nominated, paged) is the
        // strategy's and the pager's doing, which the model does not follow.
        maybe.push('EINVAL');
        // Writing to swap may meet a full or failing area; bringing a page back, no frame or a failing one.
        if (op.kind === 'pagingEvict' || op.kind === 'pageOut') maybe.push('ENOSPC', 'EIO');
        if (op.kind === 'pagingPrep') maybe.push('ENOMEM', 'EIO');
        return undefined;
      case 'setSharing':
      case 'pause':
      case 'setMaxPages':
        return undefined;
      case 'claim': {
        if (op.pages === 0) return undefined;
        if (d.claim > 0 || op.pages <= d.pages.size || op.pages > d.maxPages) return 'EINVAL';
        if (freeFrames === undefined) {
          maybe.push('ENOMEM');
          return undefined;
        }
        return op.pages - d.pages.size > freeFrames - this.outstandingClaims() ? 'ENOMEM' : undefined;
      }
      case 'advise':
        return op.start + op.count <= d.size ? undefined : 'EINVAL';
      case 'madvise':
        return op.advice === MADV_DONTNEED && op.gfn + op.count <= d.size ? undefined : 'EINVAL';
      case 'read':
      case 'writePage':
        if (op.gfn >= d.size || !d.pages.has(op.gfn)) return 'EINVAL';
        return d.paused ? 'EAGAIN' : undefined;
      case 'writeBytes':
        if (op.gfn >= d.size || !d.pages.has(op.gfn) || op.offset + op.bytes.length > PAGE_SIZE) return 'EINVAL';
        return d.paused ? 'EAGAIN' : undefined;
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
      case 'tmemNewPool':
      case 'tmemDestroyPool':
      case 'tmemPut':
      case 'tmemGet':
      case 'tmemFlushPage':
      case 'tmemFlushObject': {
        const pages = this.options.tmemPages;
        if (pages === undefined) return 'EOPNOTSUPP';
        if (op.kind === 'tmemNewPool') return d.pools.size >= TMEM_POOLS ? 'ENOSPC' : undefined;
        const pool = d.pools.get(op.pool);
        if (pool === undefined) return 'ENOENT';
        if (op.kind === 'tmemPut' && pool.persistent) {
          // Without room for one more distinct content among the persistent pages (replacing a
          // page whose slot is its own needs none; the model does not know slots: allow both).
          // Refused exactly when the distinct persistent contents after the put (the page it
          // replaces gone) need more slots than there are: equal contents share a slot, and
          // every other slot is free or holds ephemeral pages only, which eviction frees.
          const contents = this.persistentContents({ pages: pool.pages, key: `${op.object}:${op.index}` });
          contents.add(op.content);
          if (contents.size > pages) return 'ENOSPC';
        }
        return undefined;
      }
    }
  }

  /** The refusal of nominating `dom`'s `gfn`, if certain; pushes EINVAL on `maybe` when it may have no frame. */
  private nominateError(dom: number, gfn: number, maybe: string[]): string | undefined {
    const d = this.domains.get(dom);
    if (d === undefined) return 'ESRCH';
    if (gfn >= d.size) return 'EINVAL';
    if (!d.sharing) return 'EOPNOTSUPP';
    if (!d.pages.has(gfn)) return 'EINVAL';
    maybe.push('EINVAL');
    return undefined;
  }

  private mayShareError(a: ModelDomain, b: ModelDomain): string | undefined {
    if (!a.sharing || !b.sharing) return 'EOPNOTSUPP';
    return a.group !== b.group ? 'EPERM' : undefined;
  }

  /**
   * Applies a successful `op` whose call returned `result`, and returns what is wrong with that
   * result (undefined when nothing). `out` holds what a read or tmem get copied out.
   */
  apply(op: ModelOp, page: (content: number) => Uint8Array, result?: unknown, out?: Uint8Array, tmemPage: (content: number) => Uint8Array = page): string | undefined {
    const dom = (n: number): ModelDomain => this.domains.get(n)!;
    switch (op.kind) {
      case 'create':
        this.create(op.maxPages, op.gfnCount, op.group);
        return;
      case 'populate': {
        const d = dom(op.dom);
        for (const first of op.gfns) {
          for (let g = first; g < first + (1 << op.order); g++) d.pages.set(g, new Uint8Array(PAGE_SIZE));
        }
        d.claim -= Math.min(d.claim, this.populateFrames(op));
        return;
      }
      case 'decrease':
        for (const first of op.gfns) {
          for (let g = first; g < first + (1 << op.order); g++) dom(op.dom).pages.delete(g);
        }
        return;
      case 'writePage':
        dom(op.dom).pages.set(op.gfn, this.stored(page(op.content)));
        return;
      case 'writeBytes':
        this.storeBytes(dom(op.dom).pages.get(op.gfn)!, op.offset, op.bytes);
        return;
      case 'read':
        if (out !== undefined && !equalBytes(out, dom(op.dom).pages.get(op.gfn)!)) return 'read differs from what was last written';
        return;
      case 'destroy': {
        const d = dom(op.dom);
        if (d.parent !== undefined) dom(d.parent).forks--;
        this.domains.delete(op.dom);
        return;
      }
      case 'madvise': {
        const d = dom(op.dom);
        for (let g = op.gfn; g < op.gfn + op.count; g++) if (d.pages.has(g)) d.pages.set(g, new Uint8Array(PAGE_SIZE));
        return;
      }
      case 'fork': {
        const c = dom(op.child);
        c.pages = copyPages(dom(op.parent).pages);
        c.parent = op.parent;
        dom(op.parent).forks++;
        return;
      }
      case 'forkReset': {
        const c = dom(op.dom);
        c.pages = copyPages(dom(c.parent!).pages);
        return;
      }
      case 'addPhysmap':
        dom(op.client).pages.set(op.gfnClient, dom(op.source).pages.get(op.gfnSource)!.slice());
        return;
      case 'setSharing':
        dom(op.dom).sharing = op.enable;
        return;
      case 'pause':
        dom(op.dom).paused = op.paused;
        return;
      case 'claim': {
        const d = dom(op.dom);
        d.claim = op.pages === 0 ? 0 : op.pages - d.pages.size;
        return;
      }
      case 'setMaxPages':
        dom(op.dom).maxPages = op.maxPages;
        return;
      case 'tmemNewPool': {
        const pools = dom(op.dom).pools;
        let id = 0;
        while (pools.has(id)) id++;
        pools.set(id, { persistent: op.persistent, pages: new Map() });
        return result === id ? undefined : `new pool got id ${String(result)}, the lowest free is ${id}`;
      }
      case 'tmemDestroyPool':
        dom(op.dom).pools.delete(op.pool);
        return;
      case 'tmemPut': {
        const pool = dom(op.dom).pools.get(op.pool)!;
        const key = `${op.object}:${op.index}`;
        if (result === true) {
          pool.pages.set(key, op.content);
          return;
        }
        // Refused (ephemeral only): the page that was at the key is dropped too. Only when every
        // slot holds a persistent page other than this content is there no room.
        const persistent = this.persistentContents();
        const room = persistent.has(op.content) || persistent.size < this.options.tmemPages!;
        pool.pages.delete(key);
        if (pool.persistent) return `persistent put returned ${String(result)}`;
        return room ? `ephemeral put refused with ${persistent.size} distinct persistent contents in ${this.options.tmemPages} slots` : undefined;
      }
      case 'tmemGet': {
        const pool = dom(op.dom).pools.get(op.pool)!;
        const key = `${op.object}:${op.index}`;
        const content = pool.pages.get(key);
        // An ephemeral get takes the page out (and a miss means it was gone already).
        if (!pool.persistent) pool.pages.delete(key);
        if (result === true) {
          if (content === undefined) return 'get found a page never put (or flushed)';
          if (!equalBytes(out!, tmemPage(content))) return `get returned other bytes than content ${content} put`;
          return;
        }
        if (result !== false) return `get returned ${String(result)}`;
        return pool.persistent && content !== undefined ? `persistent get missed content ${content}` : undefined;
      }
      case 'tmemFlushPage': {
        const pool = dom(op.dom).pools.get(op.pool)!;
        const key = `${op.object}:${op.index}`;
        const had = pool.pages.delete(key);
        if (result === had || (!pool.persistent && result === false)) return;
        return `flush_page returned ${String(result)}, the model held ${had ? 'a page' : 'none'}`;
      }
      case 'tmemFlushObject': {
        const pool = dom(op.dom).pools.get(op.pool)!;
        let held = 0;
        for (const key of [...pool.pages.keys()]) {
          if (key.startsWith(`${op.object}:`)) {
            pool.pages.delete(key);
            held++;
          }
        }
        const n = result as number;
        if (pool.persistent ? n === held : n >= 0 && n <= held) return;
        return `flush_object returned ${n}, the model held ${held}`;
      }
      case 'pagingPrep':
        if (op.data) dom(op.dom).pages.set(op.gfn, this.stored(page(op.content)));
        return;
      case 'share':
      case 'rangeShare':
      case 'advise':
      case 'scan':
      case 'pagingNominate':
      case 'pagingEvict':
      case 'pageOut':
        return;
    }
  }
}

/** Options of {@link checkAgainstModel}. */
export interface ModelCheckOptions {
  /** Content of pool entry `i` (PAGE_SIZE bytes); a small pool makes pages collide and share. */
  readonly page: (content: number) => Uint8Array;
  /** Content of tmem pool entry `i` (default `page`). */
  readonly tmemPage?: (content: number) => Uint8Array;
  /** Called after every step, e.g. to watch a strategy's own counters. */
  readonly afterStep?: (hv: Hypervisor) => void;
  /** True when the swap device injects faults: accesses may then fail with EIO. */
  readonly swapFaults?: boolean;
}

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
  /** Successful operations by kind. */
  readonly appliedByKind: Readonly<Record<string, number>>;
  /** Refusals by errno. */
  readonly refusedByErrno: Readonly<Record<string, number>>;
  /** Paged-out pages of the parent at successful forks and fork resets (swap: the child must read them). */
  readonly pagedAtFork: number;
}

/** Frames `op` may need at most (claims of other domains aside), so that ENOMEM is only accepted when fewer are free. */
function framesNeeded(op: ModelOp, model: ReferenceModel): number {
  if (op.kind === 'writePage' || op.kind === 'writeBytes' || op.kind === 'pagingPrep') return 1;
  if (op.kind === 'populate') return model.populateFrames(op);
  if (op.kind === 'advise') return Infinity; // may unmerge any number of pages
  return 0;
}

/**
 * Runs `ops` against `hv` (fresh, with no domains) and against the reference model. After every
 * step: a refused op must carry an errno the model accepts (see {@link ReferenceModel.acceptable})
 * and leave the state as it was (after the nominations of a share or add_physmap, which stand);
 * ENOMEM only when fewer frames are free and unclaimed than the op needs; every read and tmem
 * result must agree with the model; the audit (tmem's too) must be clean; page counts, claims,
 * pauses and live domains must match the model's; no frame other than the zero frame may be
 * mapped by domains of two trust groups; no page of a domain with sharing disabled may come to
 * share a frame (the zero frame aside); under the zeroPagesOnly mitigation, no step but an
 * explicit sharing op may map a page to a shared frame of other content than zeros. At the end
 * every page of every domain and every persistent tmem page is compared, then every domain is
 * destroyed and every frame, swap slot and tmem slot must be free again ({@link destroyAll}).
 * On a machine whose frames hold fingerprints (`hv.memory.contents === 'fingerprints'`) the model
 * predicts what the guest reads back there (see {@link ReferenceModelOptions.contents}).
 * Throws an Error naming the step on the first mismatch.
 */
export function checkAgainstModel(hv: Hypervisor, ops: readonly ModelOp[], options: ModelCheckOptions): ModelCheckSummary {
  const model = new ReferenceModel({ populateZero: hv.dedup.populateZero, tmemPages: hv.tmem?.pages, swap: hv.pager !== undefined, contents: hv.memory.contents ?? 'bytes' });
  const buf = new Uint8Array(PAGE_SIZE);
  const tmemPage = options.tmemPage ?? options.page;
  const appliedByKind: Record<string, number> = {};
  const refusedByErrno: Record<string, number> = {};
  let pagedAtFork = 0;
  let applied = 0;
  let peakPagesSharing = 0;
  let peakZeroPages = 0;
  let shared = sharedMappings(hv);
  ops.forEach((op, step) => {
    const where = `step ${step} ${JSON.stringify(op)}`;
    const freeBefore = hv.frames.freeFrames;
    const acceptable = model.acceptable(op, freeBefore);
    // The state a refusal must leave as it was; not needed when the model accepts no refusal (any
    // refusal fails the check then), so not taken: it is most of a step's cost.
    const mayRefuse = acceptable.some((e) => e !== undefined);
    let before = mayRefuse ? observableDigest(hv) : '';
    // Claims hold against reservation growth only (faults do not see them).
    const othersClaims = op.kind === 'populate' ? model.outstandingClaims() - (model.domains.get(op.dom)?.claim ?? 0) : 0;
    const parent = op.kind === 'fork' ? op.parent : op.kind === 'forkReset' ? model.domains.get(op.dom)?.parent : undefined;
    const parentPaged = parent !== undefined && model.domains.has(parent) ? hv.domainStats(asDomId(parent)).pagedPages : 0;
    let errno: string | undefined;
    let result: unknown;
    try {
      result = runOp(hv, op, options, buf, () => {
        if (mayRefuse) before = observableDigest(hv);
      });
    } catch (e) {
      if (!(e instanceof HypervisorError)) throw new Error(`${where}: threw ${String(e)}`);
      errno = e.errnoName;
    }
    // With swap, an access may meet an injected device fault (EIO), which pauses the domain; an
    // allocation may evict pages before it is refused with ENOMEM.
    const swapping = hv.pager !== undefined;
    const access = ACCESSES.has(op.kind);
    if (options.swapFaults === true && access && errno === 'EIO' && acceptable.includes(undefined)) {
      // The fault clears before the next step: the domain runs again, as the model has it.
      hv.unpauseDomain(asDomId((op as { dom: number }).dom));
    } else if (!acceptable.includes(errno)) {
      const wanted = acceptable.map((e) => e ?? 'success').join(' or ');
      throw new Error(`${where}: hypervisor ${errno ?? 'succeeded'}, model expects ${wanted}`);
    }
    const needed = framesNeeded(op, model);
    if (errno === 'ENOMEM' && op.kind !== 'claim' && freeBefore - othersClaims >= needed) {
      throw new Error(`${where}: ENOMEM with ${freeBefore} frames free, ${othersClaims} claimed by other domains, ${needed} needed`);
    }
    if (errno === undefined) {
      // Claims hold against other domains' reservation growth.
      if (op.kind === 'populate' && !swapping && needed > 0 && needed + othersClaims > freeBefore) {
        throw new Error(`${where}: populated ${needed} frames with ${freeBefore} free of which ${othersClaims} claimed by other domains`);
      }
      applied++;
      appliedByKind[op.kind] = (appliedByKind[op.kind] ?? 0) + 1;
      pagedAtFork += parentPaged;
      const wrong = model.apply(op, options.page, result, buf, tmemPage);
      if (wrong !== undefined) throw new Error(`${where}: ${wrong}`);
    } else {
      refusedByErrno[errno] = (refusedByErrno[errno] ?? 0) + 1;
      // A refused op changes nothing: an eviction to make room is all or nothing. Only a device
      // error on the way in (EIO, the domain paused) may leave the pages evicted before it.
      if (!(swapping && errno === 'EIO') && observableDigest(hv) !== before) {
        throw new Error(`${where}: refused with ${errno} but the state changed`);
      }
      comparePages(hv, model, buf, where);
    }
    const problems = [...hv.audit(), ...(hv.tmem?.audit().map((p) => `tmem: ${p}`) ?? [])];
    if (problems.length > 0) throw new Error(`${where}: audit: ${problems.join('; ')}`);
    const mismatch = compareDomains(hv, model);
    if (mismatch !== undefined) throw new Error(`${where}: ${mismatch}`);
    const after = sharedMappings(hv);
    const sharing = checkSharing(hv, model, shared, after, EXPLICIT_SHARING.has(op.kind));
    if (sharing !== undefined) throw new Error(`${where}: ${sharing}`);
    shared = after;
    const t = hv.totals();
    peakPagesSharing = Math.max(peakPagesSharing, t.pagesSharing);
    peakZeroPages = Math.max(peakZeroPages, t.zeroPages);
    options.afterStep?.(hv);
  });
  comparePages(hv, model, buf, 'end');
  compareTmem(hv, model, buf, tmemPage);
  const leaks = destroyAll(hv);
  if (leaks.length > 0) throw new Error(`end: destroying every domain: ${leaks.join('; ')}`);
  return { applied, refused: ops.length - applied, peakPagesSharing, peakZeroPages, appliedByKind, refusedByErrno, pagedAtFork };
}

/**
 * Destroys every domain of `hv`, forks before their parents, and returns what that did not give
 * back: frames other than the zero frame, swap slots, tmem slots, claims, a domain that could
 * never be destroyed (a fork cycle), and whatever the audit then finds. Empty when nothing leaked.
 */
export function destroyAll(hv: Hypervisor): string[] {
  const problems: string[] = [];
  for (let left = hv.domains(); left.length > 0; ) {
    const leaves = left.filter((d) => d.forks === 0);
    if (leaves.length === 0) {
      problems.push(`doms ${left.map((d) => d.id).join(', ')} can never be destroyed: each is the parent of a live fork`);
      break;
    }
    for (const d of leaves) hv.destroyDomain(d.id);
    left = hv.domains();
  }
  const free = hv.frames.freeFrames;
  if (free !== hv.frames.totalFrames - 1) problems.push(`${hv.frames.totalFrames - 1 - free} frames still allocated besides the zero frame`);
  const slots = hv.swapStats()?.swapSlotsUsed ?? 0;
  if (slots !== 0) problems.push(`${slots} swap slots still in use`);
  const tmemSlots = hv.tmem?.stats().slotsUsed ?? 0;
  if (tmemSlots !== 0) problems.push(`${tmemSlots} tmem slots still in use`);
  problems.push(...hv.audit(), ...(hv.tmem?.audit().map((p) => `tmem: ${p}`) ?? []));
  return problems;
}

/** Live domains, page counts, claims, pause and sharing flags, fork links and tmem page counts against the model. */
function compareDomains(hv: Hypervisor, model: ReferenceModel): string | undefined {
  const live = hv.domains();
  const ids = live.map((d) => d.id).join(',');
  const want = [...model.domains.keys()].join(',');
  if (ids !== want) return `live domains ${ids}, model ${want}`;
  let persistent = 0;
  let ephemeral = 0;
  for (const d of live) {
    const m = model.domains.get(d.id)!;
    const tot = hv.frames.totPages(d.id);
    const got = { tot, claim: d.claim, paused: d.paused, sharing: d.sharing, parent: d.parent, forks: d.forks, group: d.trustGroup, max: hv.frames.maxPages(d.id) };
    const exp = { tot: m.pages.size, claim: m.claim, paused: m.paused, sharing: m.sharing, parent: m.parent, forks: m.forks, group: m.group, max: m.maxPages };
    if (JSON.stringify(got) !== JSON.stringify(exp)) return `dom ${d.id} has ${JSON.stringify(got)}, model ${JSON.stringify(exp)}`;
    for (const p of m.pools.values()) {
      if (p.persistent) persistent += p.pages.size;
      else ephemeral += p.pages.size;
    }
  }
  const st = hv.tmem?.stats();
  if (st !== undefined && (st.persistentPages !== persistent || st.ephemeralPages > ephemeral)) {
    return `tmem holds ${st.persistentPages} persistent and ${st.ephemeralPages} ephemeral pages, model ${persistent} and at most ${ephemeral}`;
  }
  return undefined;
}

/** Every page mapping a shared frame other than the zero frame: `dom:gfn` → frame. */
function sharedMappings(hv: Hypervisor): Map<string, Mfn> {
  const out = new Map<string, Mfn>();
  const rmap = hv.p2m.rmap;
  for (const mfn of rmap.frames()) {
    if (mfn === hv.zeroMfn) continue;
    rmap.forEach(mfn, (dom, gfn) => out.set(`${dom}:${gfn}`, mfn));
  }
  return out;
}

/**
 * Trust groups, sharing control and zeroPagesOnly, from the mappings of shared frames before and
 * after a step (`explicit`: the step was a sharing op the toolstack asked for).
 */
function checkSharing(hv: Hypervisor, model: ReferenceModel, before: Map<string, Mfn>, after: Map<string, Mfn>, explicit: boolean): string | undefined {
  const rmap = hv.p2m.rmap;
  const mappers = (mfn: Mfn): number[] => {
    const doms: number[] = [];
    rmap.forEach(mfn, (dom) => doms.push(dom));
    return doms;
  };
  for (const mfn of rmap.frames()) {
    if (mfn === hv.zeroMfn) continue;
    const groups = new Set(mappers(mfn).map((dom) => model.domains.get(dom)?.group));
    if (groups.size > 1) return `frame ${mfn} is mapped by domains of trust groups ${[...groups].join(', ')}: ${mappers(mfn).join(', ')}`;
  }
  for (const [key, mfn] of after) {
    if (before.get(key) === mfn) continue;
    if (hv.mitigations.zeroPagesOnly === true && !explicit && !hv.memory.isZeroFrame(asMfn(mfn))) {
      return `zeroPagesOnly: dom:gfn ${key} came to share frame ${mfn}, which does not hold zeros`;
    }
    const doms = [...new Set(mappers(mfn))];
    const disabled = doms.filter((dom) => model.domains.get(dom)?.sharing === false);
    if (disabled.length > 0) return `dom:gfn ${key} came to share frame ${mfn}, mapped by dom ${disabled.join(', ')} whose sharing is disabled (mapped by doms ${doms.join(', ')})`;
  }
  return undefined;
}

function comparePages(hv: Hypervisor, model: ReferenceModel, buf: Uint8Array, where: string): void {
  for (const [dom, d] of model.domains) {
    // A paused domain cannot read: let it run for the comparison.
    if (d.paused) hv.unpauseDomain(asDomId(dom));
    for (const [gfn, content] of d.pages) {
      readRetrying(hv, asDomId(dom), asGfn(gfn), buf);
      if (!equalBytes(buf, content)) throw new Error(`${where}: dom ${dom} gfn ${gfn} differs from what was last written`);
    }
    if (d.paused) hv.pauseDomain(asDomId(dom));
  }
}

/** Every persistent tmem page equals what was put. */
function compareTmem(hv: Hypervisor, model: ReferenceModel, buf: Uint8Array, tmemPage: (content: number) => Uint8Array): void {
  if (hv.tmem === undefined) return;
  for (const [dom, d] of model.domains) {
    for (const [id, pool] of d.pools) {
      if (!pool.persistent) continue;
      for (const [key, content] of pool.pages) {
        const [object, index] = key.split(':').map(Number) as [number, number];
        if (!hv.tmemGetPage(asDomId(dom), id, [object, 0, 0], index, buf) || !equalBytes(buf, tmemPage(content))) {
          throw new Error(`end: dom ${dom} tmem pool ${id} page ${key} differs from content ${content} put`);
        }
      }
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

/** Runs `op`; `checkpoint` is called after each nomination of a share or add_physmap (they stand whatever follows). */
function runOp(hv: Hypervisor, op: ModelOp, options: ModelCheckOptions, buf: Uint8Array, checkpoint: () => void): unknown {
  const dom = (n: number): DomId => asDomId(n);
  const oid = (object: number): [number, number, number] => [object, 0, 0];
  switch (op.kind) {
    case 'create':
      // Every domain starts mergeable, as QEMU marks guest RAM: scanning strategies scan it.
      hv.setDomainMergeable(hv.createDomain({ maxPages: op.maxPages, gfnCount: op.gfnCount, trustGroup: op.group ?? 0 }), true);
      return;
    case 'populate':
      return hv.populatePhysmap(dom(op.dom), op.gfns, op.order, op.pod ? 1 << 16 : 0);
    case 'decrease':
      return hv.decreaseReservation(dom(op.dom), op.gfns, op.order);
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
      // Nominate both, then share; the nominations stand whatever the share does.
      const ha = hv.nominateGfn(dom(op.a), asGfn(op.gfnA));
      checkpoint();
      const hb = hv.nominateGfn(dom(op.b), asGfn(op.gfnB));
      checkpoint();
      hv.share(dom(op.a), asGfn(op.gfnA), ha, dom(op.b), asGfn(op.gfnB), hb);
      return;
    }
    case 'addPhysmap': {
      const h = hv.nominateGfn(dom(op.source), asGfn(op.gfnSource));
      checkpoint();
      hv.addPhysmap(dom(op.source), asGfn(op.gfnSource), h, dom(op.client), asGfn(op.gfnClient));
      return;
    }
    case 'rangeShare':
      return hv.rangeShare(dom(op.source), dom(op.client), asGfn(op.first), asGfn(op.last));
    case 'fork':
      hv.fork(dom(op.child), dom(op.parent));
      return;
    case 'forkReset':
      hv.forkReset(dom(op.dom));
      return;
    case 'destroy':
      hv.destroyDomain(dom(op.dom));
      return;
    case 'advise':
      hv.advise(dom(op.dom), asGfn(op.start), op.count, op.mergeable);
      return;
    case 'madvise':
      hv.madvise(dom(op.dom), asGfn(op.gfn), op.count, op.advice);
      return;
    case 'pagingNominate':
      hv.pagingNominate(dom(op.dom), asGfn(op.gfn));
      return;
    case 'pagingEvict':
      hv.pagingEvict(dom(op.dom), asGfn(op.gfn));
      return;
    case 'pageOut':
      // The nomination stands whatever the evict does.
      hv.pagingNominate(dom(op.dom), asGfn(op.gfn));
      checkpoint();
      hv.pagingEvict(dom(op.dom), asGfn(op.gfn));
      return;
    case 'pagingPrep':
      hv.pagingPrep(dom(op.dom), asGfn(op.gfn), op.data ? options.page(op.content) : undefined);
      return;
    case 'setSharing':
      hv.setSharing(dom(op.dom), op.enable);
      return;
    case 'pause':
      if (op.paused) hv.pauseDomain(dom(op.dom));
      else hv.unpauseDomain(dom(op.dom));
      return;
    case 'claim':
      hv.claimPages(dom(op.dom), op.pages);
      return;
    case 'setMaxPages':
      hv.setMaxPages(dom(op.dom), op.maxPages);
      return;
    case 'tmemNewPool':
      return hv.tmemNewPool(dom(op.dom), op.persistent);
    case 'tmemDestroyPool':
      hv.tmemDestroyPool(dom(op.dom), op.pool);
      return;
    case 'tmemPut':
      return hv.tmemPutPage(dom(op.dom), op.pool, oid(op.object), op.index, (options.tmemPage ?? options.page)(op.content));
    case 'tmemGet':
      return hv.tmemGetPage(dom(op.dom), op.pool, oid(op.object), op.index, buf);
    case 'tmemFlushPage':
      return hv.tmemFlushPage(dom(op.dom), op.pool, oid(op.object), op.index);
    case 'tmemFlushObject':
      return hv.tmemFlushObject(dom(op.dom), op.pool, oid(op.object));
    case 'scan':
      // Scanning strategies: run `wakes` wake-ups, as the simulated clock would, through the
      // hypervisor so that the uniform-writes mitigation sees each scanner pass.
      for (let i = 0; i < op.wakes && hv.dedup.wake !== undefined; i++) {
        const t = hv.dedup.nextWakeNs?.() ?? Infinity;
        if (!Number.isFinite(t)) break;
        hv.wakeDedup(t);
      }
      return;
  }
}

function copyPages(pages: Map<number, Uint8Array>): Map<number, Uint8Array> {
  return new Map([...pages].map(([g, p]) => [g, p.slice()]));
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  // memcmp: the check compares every page of every domain after each refusal.
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
