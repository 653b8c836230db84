import { InlineDedup } from '@pagevisor/dedup';
import { Hypervisor } from '@pagevisor/hypervisor';
import { asGfn, PAGE_SIZE } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { timelineSample } from '@pagevisor/simulator';
import { TIMELINE_FRAMES, TIMELINE_ID } from './micro-timeline.js';

describe('timelineSample', () => {
  it('reads what the simulator samples: the totals and the swap figures (0 without swap)', async () => {
    const hv = await Hypervisor.create({ frames: 64, dedup: new InlineDedup() });
    const page = new Uint8Array(PAGE_SIZE).fill(7);
    for (let d = 0; d < 2; d++) {
      const dom = hv.createDomain({ maxPages: 4 });
      hv.populatePhysmap(dom, [0, 1, 2, 3]);
      hv.writePage(dom, asGfn(0), 0, page, 0, PAGE_SIZE);
    }
    const t = hv.totals();
    expect(t.pagesShared).toBe(1);
    expect(timelineSample(hv, 123)).toEqual({
      tNs: 123,
      guestPages: 8,
      machineFramesUsed: t.machineFramesUsed,
      pagesShared: 1,
      pagesSharing: 1,
      zeroPages: t.zeroPages,
      cowFaults: 0,
      zeroFaults: t.zeroFaults,
      pagedPages: 0,
      swapOuts: 0,
      swapIns: 0,
      swapSlotsUsed: 0,
      swapDiskBytes: 0,
    });
  });

  it('compares a host of 1 GiB with one of 1 TiB, under the ids the target reads', () => {
    expect(TIMELINE_FRAMES.small * PAGE_SIZE).toBe(2 ** 30);
    expect(TIMELINE_FRAMES.large * PAGE_SIZE).toBe(2 ** 40);
    expect(TIMELINE_ID.ratio).toBe('micro.hypervisor.timeline-sample-ratio');
  });
});
