import { describe, expect, it } from 'vitest';
import { asGfn, DOMID_COW, FrameFlags, PAGE_SIZE, type Mfn } from '@pagevisor/types';
import { RMAP_SAMPLE_STRIDE } from './audit.js';
import { Hypervisor } from './hypervisor.js';

/** Two domains holding the same `pages` distinct pages (each frame shared by both), under inline dedup. */
async function sharedHost(pages: number): Promise<{ hv: Hypervisor; shared: Mfn[] }> {
  const hv = await Hypervisor.create({ frames: 4 * pages });
  const gfns = Array.from({ length: pages }, (_, i) => i);
  for (let d = 0; d < 2; d++) {
    const dom = hv.createDomain({ maxPages: pages });
    hv.populatePhysmap(dom, gfns);
    for (let g = 0; g < pages; g++) hv.writePage(dom, asGfn(g), 0, new Uint8Array(PAGE_SIZE).fill(g + 1), 0, PAGE_SIZE);
  }
  const shared: Mfn[] = [];
  for (let m = 0; m < hv.frames.totalFrames; m++) {
    const mfn = m as Mfn;
    if (mfn !== hv.zeroMfn && !hv.frames.isFree(mfn) && (hv.frames.flags(mfn) & FrameFlags.shared) !== 0) shared.push(mfn);
  }
  return { hv, shared };
}

describe('the audit at its two depths', () => {
  it('passes a sound host at both depths', async () => {
    const { hv, shared } = await sharedHost(3 * RMAP_SAMPLE_STRIDE);
    expect(shared.length).toBe(3 * RMAP_SAMPLE_STRIDE);
    expect(hv.audit('full')).toEqual([]);
    expect(hv.audit('sample')).toEqual([]);
  });

  it('checks every refcount against the shared p2m entries at both depths, and walks the reverse map of every shared frame or of a sample', async () => {
    const { hv, shared } = await sharedHost(3 * RMAP_SAMPLE_STRIDE);
    // The reverse map finds a frame all of whose mappers map it at one gfn from that gfn, its
    // anchor (the frame's m2p word). Moved to another gfn, on a frame off the sample (the sample's
    // shared frames are the zero frame, then every RMAP_SAMPLE_STRIDE-th): the full audit reads the
    // frame's mappers and finds none; both depths have the p2m's own audit find its entries unrecorded.
    const off = shared[1]!;
    const anchor = hv.frames.gfn(off);
    hv.frames.setOwner(off, DOMID_COW, asGfn(anchor + 1));
    const full = hv.audit('full');
    expect(full).toContain(`shared mfn ${off}: refcount 2 but reverse map holds 0`);
    expect(full).toContain(`p2m: d1 gfn ${anchor} maps mfn ${off} shared, unrecorded`);
    expect(hv.audit('sample')).toEqual([`p2m: d1 gfn ${anchor} maps mfn ${off} shared, unrecorded`, `p2m: d2 gfn ${anchor} maps mfn ${off} shared, unrecorded`]);
    hv.frames.setOwner(off, DOMID_COW, anchor);
    // On a frame of the sample the sample audit reads its mappers too.
    const on = shared[RMAP_SAMPLE_STRIDE - 1]!;
    hv.frames.setOwner(on, DOMID_COW, asGfn(hv.frames.gfn(on) + 1));
    expect(hv.audit('sample')).toContain(`shared mfn ${on}: refcount 2 but reverse map holds 0`);
    hv.frames.setOwner(on, DOMID_COW, asGfn(hv.frames.gfn(on) - 1));
    expect(hv.audit('sample')).toEqual([]);
    // A refcount that no longer matches the p2m: both depths, any frame.
    hv.frames.addRef(off, 1);
    expect(hv.audit('sample')).toContain(`shared mfn ${off}: refcount 3 but shared p2m entries are 2`);
    expect(hv.audit('full')).toContain(`shared mfn ${off}: refcount 3 but reverse map holds 2`);
  });
});
