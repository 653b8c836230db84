import { P2mType, asGfn, type DomId, type DomainStats, type Mfn, type TotalsStats } from '@pagevisor/types';
import type { HostCore } from './core.js';
import { sharingCounts } from './sharing.js';

// Memory figures of a domain and of the host.

/** Memory figures of one domain. */
export function domainStats(h: HostCore, dom: DomId): DomainStats {
  const d = h.domain('domain_stats', dom);
  const t = d.table;
  let privatePages = 0;
  let sharedPages = 0;
  let zeroPages = 0;
  let podPages = 0;
  let pagedPages = 0;
  for (let g = 0; g < t.size; g++) {
    const type = t.type(asGfn(g));
    if (type === P2mType.ram_rw || type === P2mType.paging_out) privatePages++;
    else if (type === P2mType.populate_on_demand) podPages++;
    else if (type === P2mType.paged) pagedPages++;
    else if (type === P2mType.ram_shared) {
      if (t.mfn(asGfn(g)) === h.zeroMfn) zeroPages++;
      else sharedPages++;
    }
  }
  return {
    domId: d.id,
    name: d.name,
    totPages: h.frames.totPages(dom),
    maxPages: h.frames.maxPages(dom),
    privatePages,
    sharedPages,
    zeroPages,
    podPages,
    pagedPages,
    cowFaults: d.cowFaults,
    zeroFaults: d.zeroFaults,
    cpuNs: d.cpuNs,
  };
}

/** Memory figures of the whole host. */
export function totals(h: HostCore): TotalsStats {
  let guestPages = 0;
  let cowFaults = 0;
  let zeroFaults = 0;
  let cpuNs = 0;
  let pagedPages = 0;
  for (const d of h.domainsById.values()) {
    guestPages += h.frames.totPages(d.id);
    cowFaults += d.cowFaults;
    zeroFaults += d.zeroFaults;
    cpuNs += d.cpuNs;
    // The tables count their entries by type: no scan of every gfn a sample.
    pagedPages += d.table.countOf(P2mType.paged);
  }
  const { shared: pagesShared, sharing: pagesSharing, zeroPages } = sharingCounts(h);
  const machineFramesUsed = h.frames.totalFrames - h.frames.freeFrames;
  // Saved by sharing only: pages out on swap need no frame either, but sharing did not save them.
  const resident = guestPages - pagedPages;
  return {
    guestPages,
    machineFramesUsed,
    machineFramesFree: h.frames.freeFrames,
    pagesShared,
    pagesSharing,
    zeroPages,
    pagedPages,
    cowFaults,
    zeroFaults,
    savedPct: guestPages === 0 ? 0 : Math.round(((resident - machineFramesUsed) / guestPages) * 10000) / 100,
    cpuNs,
    dedupCpuNs: h.dedupCpuNs,
  };
}

/**
 * Resident frames holding a content that another resident frame holds already: over every
 * content in RAM, its frames beyond the first (the zero frame counts as a frame of zeros).
 * 0 means RAM holds each content once. Hashes every frame in use (confirmed by compares): a
 * figure for the end of a run and for tests, not for every sample. The frames are grouped by
 * hash in typed arrays (a counting sort on the hash's high 16 bits, then a sort of each group
 * on the low 16), so that hosts of 10^8 frames need no object per frame (a Map holds 2^24 keys).
 */
export function duplicateFrames(h: HostCore): number {
  const { frames, memory } = h;
  const total = frames.totalFrames;
  const inUse = total - frames.freeFrames;
  const mfns = new Int32Array(inUse);
  const hashes = new Uint32Array(inUse);
  const starts = new Uint32Array(65537);
  let n = 0;
  for (let m = 0; m < total; m++) {
    if (frames.isFree(m as Mfn)) continue;
    const hash = memory.hashFrame(m as Mfn) >>> 0;
    mfns[n] = m;
    hashes[n++] = hash;
    starts[(hash >>> 16) + 1]!++;
  }
  for (let b = 1; b <= 65536; b++) starts[b]! += starts[b - 1]!;
  // mfns by the hash's high 16 bits; each group then sorted on (low 16 bits, mfn), one number.
  const next = starts.slice(0, 65536);
  const grouped = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const hash = hashes[i]!;
    grouped[next[hash >>> 16]!++] = (hash & 0xffff) * 2 ** 31 + mfns[i]!;
  }
  let duplicates = 0;
  const kept: number[] = [];
  for (let b = 0; b < 65536; b++) {
    const group = grouped.subarray(starts[b]!, starts[b + 1]!).sort();
    for (let i = 0; i < group.length; ) {
      // A run of one hash: its distinct contents, each kept once.
      const low = Math.floor(group[i]! / 2 ** 31);
      kept.length = 0;
      for (; i < group.length && Math.floor(group[i]! / 2 ** 31) === low; i++) {
        const m = (group[i]! % 2 ** 31) as Mfn;
        if (kept.some((o) => memory.framesEqual(o as Mfn, m))) duplicates++;
        else kept.push(m);
      }
    }
  }
  return duplicates;
}

/**
 * Metadata bytes held in typed arrays: frame table (with its allocator), p2m tables and reverse
 * map, dedup index, and the hypervisor's own per-frame arrays (sharing handles, uniform-write
 * epochs, the pager's). Frame contents are not metadata.
 */
export function metadataBytes(h: HostCore): number {
  const own = h.handles.byteLength + (h.writeEpoch?.byteLength ?? 0) + (h.pager?.metadataBytes() ?? 0);
  return h.frames.metadataBytes() + h.p2m.metadataBytes() + h.dedup.metadataBytes() + own;
}
