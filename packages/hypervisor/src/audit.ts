import {
  asGfn,
  asMfn,
  DOMID_COW,
  DOMID_INVALID,
  DOMID_XEN,
  FrameFlags,
  INVALID_MFN,
  P2M_TYPE_NAMES,
  P2mType,
  type AuditDepth,
} from '@pagevisor/types';
import type { HostCore } from './core.js';

/** What the audit reads of a host: a `Hypervisor` or its core. */
export type AuditedHost = Pick<HostCore, 'frames' | 'p2m' | 'memory' | 'dedup' | 'zeroMfn' | 'pager' | 'domains' | 'handleOf'>;

const MAX_PROBLEMS = 50;
/**
 * In a `'sample'` audit, the reverse map is walked for one shared frame in this many (listing a
 * frame's mappers is O(domains) when they all map it at one gfn); every frame's refcount is still
 * checked against the shared p2m entries that name it.
 */
export const RMAP_SAMPLE_STRIDE = 64;

/**
 * Checks every invariant of the memory manager and returns what is broken, in words:
 * - each frame is free, private, shared or the zero frame, with owner, m2p, refcount and flags to match;
 * - no frame is both free and mapped; a frame's refcount equals its reverse-map size;
 * - each p2m entry agrees with its frame (private frames point back through the m2p, shared
 *   entries are in the reverse map, and every reverse-map entry is such an entry);
 * - no free frame is held by the dedup strategy (a frame it holds is live); per-domain page counts
 *   match. No frame is required to be indexed: every insert is an offer the strategy may decline
 *   or later drop (see DedupIndex), so a strategy that indexes every frame offered checks its
 *   completeness in its own audit (InlineDedup: every shared frame is indexed);
 * - the fork graph: every parent is live, each domain's fork count equals the live domains whose
 *   parent it is, and no chain of parents comes back to where it started;
 * - the dedup strategy's own audit.
 * At depth `'sample'` the reverse map is read for one shared frame in {@link RMAP_SAMPLE_STRIDE}
 * (and the dedup strategy audits on its sample); the rest is checked in full.
 */
export function auditHypervisor(hv: AuditedHost, depth: AuditDepth = 'full'): string[] {
  const problems: string[] = [];
  const report = (msg: string): void => {
    if (problems.length < MAX_PROBLEMS) problems.push(msg);
  };
  const { frames, p2m, memory, dedup, zeroMfn } = hv;
  const rmap = p2m.rmap;
  const total = frames.totalFrames;
  // Shared mappings seen from the p2m side, per frame, to compare with the reverse map.
  const sharedSeen = new Uint32Array(total);
  const privateSeen = new Uint8Array(total);

  for (const d of hv.domains()) {
    const t = d.table;
    let populated = 0;
    for (let g = 0; g < t.size; g++) {
      const gfn = asGfn(g);
      const type = t.type(gfn);
      const mfn = t.mfn(gfn);
      if (type !== P2mType.invalid) populated++;
      const where = `dom ${d.id} gfn ${g} (${P2M_TYPE_NAMES[type]}, mfn ${mfn})`;
      if (type === P2mType.invalid || type === P2mType.populate_on_demand) {
        if (mfn !== INVALID_MFN) report(`${where}: has a frame but should have none`);
      } else if (type === P2mType.ram_rw || type === P2mType.paging_out) {
        if (mfn < 0 || mfn >= total) report(`${where}: frame out of range`);
        else if (frames.isFree(mfn)) report(`${where}: maps a free frame`);
        else if (frames.owner(mfn) !== d.id || frames.gfn(mfn) !== gfn) {
          report(`${where}: frame owned by dom ${frames.owner(mfn)} at gfn ${frames.gfn(mfn)}`);
        } else if (privateSeen[mfn]++ !== 0) report(`${where}: private frame mapped twice`);
      } else if (type === P2mType.ram_shared) {
        if (mfn < 0 || mfn >= total) report(`${where}: frame out of range`);
        else if (frames.isFree(mfn)) report(`${where}: maps a free frame`);
        else sharedSeen[mfn]!++;
      } else if (type === P2mType.paged) {
        // Holds a swap slot, checked with the swap area below.
        if (hv.pager === undefined) report(`${where}: paged without swap`);
      } else {
        report(`${where}: type not used by this hypervisor`);
      }
    }
    if (populated !== t.populated) report(`dom ${d.id}: ${populated} entries populated, table counts ${t.populated}`);
    if (populated !== frames.totPages(d.id)) report(`dom ${d.id}: ${populated} entries populated, tot_pages ${frames.totPages(d.id)}`);
  }

  let free = 0;
  let sharedFrames = 0;
  const walked = { mapped: 0, shared: 0, sharing: 0 };
  for (let m = 0; m < total; m++) {
    const mfn = asMfn(m);
    const flags = frames.flags(mfn);
    const refs = frames.refcount(mfn);
    const owner = frames.owner(mfn);
    const isShared = (flags & FrameFlags.shared) !== 0 && !frames.isFree(mfn);
    // The reverse map's count, or (a sample audit, a frame off the sample) what the p2m says it must be.
    const walk = depth === 'full' || (isShared && sharedFrames++ % RMAP_SAMPLE_STRIDE === 0);
    const mapped = walk ? rmap.count(mfn) : isShared ? sharedSeen[m]! : 0;
    // A sharing handle belongs to a shared frame only: a stale one on a reused frame would let
    // share() merge unrelated content.
    if (hv.handleOf(mfn) !== 0 && (mfn === zeroMfn || frames.isFree(mfn) || (flags & FrameFlags.shared) === 0)) {
      report(`mfn ${m}: sharing handle ${hv.handleOf(mfn)} on a frame that is not shared`);
    }
    if (frames.isFree(mfn)) {
      free++;
      if (owner !== DOMID_INVALID || refs !== 0 || flags !== 0) report(`mfn ${m}: free but owner ${owner}, refcount ${refs}, flags ${flags}`);
      if (mapped !== 0 || sharedSeen[m] !== 0 || privateSeen[m] !== 0) report(`mfn ${m}: both free and mapped`);
      if (dedup.contains(mfn)) report(`mfn ${m}: free but indexed by ${dedup.name}`);
      continue;
    }
    if (mfn === zeroMfn) {
      if (owner !== DOMID_XEN || flags !== (FrameFlags.shared | FrameFlags.zero)) report(`zero frame ${m}: owner ${owner}, flags ${flags}`);
      if (!memory.isZeroFrame(mfn)) report(`zero frame ${m}: holds non-zero bytes`);
    } else if ((flags & FrameFlags.zero) !== 0) {
      report(`mfn ${m}: flagged zero but is not the zero frame`);
    }
    if ((flags & FrameFlags.shared) !== 0) {
      // What the frame table counts of shared frames: the zero frame aside.
      if (refs > 0 && mfn !== zeroMfn) {
        walked.mapped++;
        walked.sharing += refs - 1;
      }
      if (refs > 1 && mfn !== zeroMfn) walked.shared++;
      if (mfn !== zeroMfn && owner !== DOMID_COW) report(`shared mfn ${m}: owner ${owner}, not dom_cow`);
      if (refs !== mapped) report(`shared mfn ${m}: refcount ${refs} but ${walk ? 'reverse map holds' : 'shared p2m entries are'} ${mapped}`);
      if (sharedSeen[m] !== mapped) report(`shared mfn ${m}: ${sharedSeen[m]} shared p2m entries but reverse map holds ${mapped}`);
      if (mfn !== zeroMfn && mapped === 0) report(`shared mfn ${m}: no sharer left but not freed`);
      if (privateSeen[m] !== 0) report(`shared mfn ${m}: also mapped private`);
      if (walk) rmap.forEach(mfn, (dom, gfn) => {
        const t = p2m.table(dom);
        if (t === undefined || t.type(gfn) !== P2mType.ram_shared || t.mfn(gfn) !== mfn) {
          report(`shared mfn ${m}: reverse map names dom ${dom} gfn ${gfn}, which does not map it shared`);
        }
      });
    } else {
      if (refs !== 1) report(`private mfn ${m}: refcount ${refs}`);
      if (mapped !== 0 || sharedSeen[m] !== 0) report(`private mfn ${m}: mapped shared`);
      if (privateSeen[m] !== 1) report(`private mfn ${m} (owner ${owner}, gfn ${frames.gfn(mfn)}): not mapped by its owner's p2m (a leak)`);
    }
  }
  if (free !== frames.freeFrames) report(`${free} frames are free but the allocator counts ${frames.freeFrames}`);
  // The table's counts of shared frames, what every timeline sample reads, against the walk.
  const kept = frames.sharedFrameCounts?.();
  if (kept !== undefined && (kept.mapped !== walked.mapped || kept.shared !== walked.shared || kept.sharing !== walked.sharing)) {
    report(`shared frames: the frame table counts ${JSON.stringify(kept)}, a walk ${JSON.stringify(walked)}`);
  }

  // The three records of live domains agree: the hypervisor's, the p2m's and the frame table's.
  const live = hv.domains().map((d) => d.id);
  const tables = [...p2m.domains()];
  if (live.join() !== tables.join()) report(`live domains [${live}] but p2m tables for [${tables}]`);
  for (const dom of live) if (!frames.hasDomain(dom)) report(`dom ${dom}: no page accounting in the frame table`);
  for (const msg of auditForkGraph(hv)) report(msg);

  for (const msg of p2m.audit()) report(`p2m: ${msg}`);
  const allocator = frames.allocator as { audit?: () => void };
  try {
    allocator.audit?.();
  } catch (e) {
    report(`allocator: ${e instanceof Error ? e.message : String(e)}`);
  }
  for (const msg of dedup.audit(depth)) report(`${dedup.name}: ${msg}`);
  for (const msg of hv.pager?.audit(live) ?? []) report(`swap: ${msg}`);
  return problems;
}

/** Broken invariants of the fork graph (parent links and fork counts), in words. */
function auditForkGraph(hv: AuditedHost): string[] {
  const problems: string[] = [];
  const domains = new Map(hv.domains().map((d) => [d.id as number, d]));
  const children = new Map<number, number>();
  for (const d of domains.values()) {
    if (d.parent === undefined) continue;
    if (!domains.has(d.parent)) problems.push(`dom ${d.id}: a fork of dom ${d.parent}, which is not live`);
    children.set(d.parent, (children.get(d.parent) ?? 0) + 1);
  }
  for (const d of domains.values()) {
    const n = children.get(d.id) ?? 0;
    if (d.forks !== n) problems.push(`dom ${d.id}: counts ${d.forks} live fork(s), ${n} name it their parent`);
    // A chain of parents longer than the domains there are has come round.
    let at = d.parent;
    for (let steps = 0; at !== undefined && steps <= domains.size; steps++) {
      if (at === d.id) {
        problems.push(`dom ${d.id}: its chain of parents comes back to it (a fork cycle: none of them can be destroyed)`);
        break;
      }
      at = domains.get(at)?.parent;
    }
  }
  return problems;
}
