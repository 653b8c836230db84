import { PAGE_SIZE, type DomId, type Mfn } from '@pagevisor/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { numberedPage } from '../tests/machine-host.js';
import { SharingHost } from '../tests/sharing-host.js';
import { InlineDedup, KsmDedup, PartitionedDedup } from './index.js';

const DOMS = 4;
const GFNS = 4;
/** Content 0 is the zero page. */
const CONTENTS = [new Uint8Array(PAGE_SIZE), numberedPage(1), numberedPage(2), numberedPage(3)];

const groupsArb = fc.array(fc.nat(2), { minLength: DOMS, maxLength: DOMS });
const writeArb = fc.record({ dom: fc.nat(DOMS - 1), gfn: fc.nat(GFNS - 1), content: fc.nat(CONTENTS.length - 1) });

/** Domains 1..DOMS, domain i in trust group `groups[i - 1]`. */
async function hostWith(groups: number[]) {
  const sh = await SharingHost.create(64);
  const doms = groups.map((g, i) => sh.addDomain(i + 1, GFNS, g));
  return { sh, doms };
}

/**
 * Checks the end state: no frame (the zero frame aside) is mapped by two groups, no merge or
 * lookup ever offered one group another group's frame, the host and the index are sound, and
 * every group holds each content in one frame (`contentOf` says what each page holds).
 */
function checkPartitioned(sh: SharingHost, d: PartitionedDedup, doms: DomId[], contentOf: (dom: number, gfn: number) => number): void {
  expect(sh.crossGroupMerges()).toEqual([]);
  expect(sh.crossGroupHits).toEqual([]);
  expect(sh.crossGroupFrames()).toEqual([]);
  expect(sh.audit()).toEqual([]);
  expect(d.audit()).toEqual([]);
  const frameOf = new Map<string, Mfn>();
  for (const [i, dom] of doms.entries()) {
    for (let g = 0; g < GFNS; g++) {
      const key = `${sh.groupOf(dom)}/${contentOf(i, g)}`;
      const mfn = sh.mfnOf(dom, g);
      expect(frameOf.get(key) ?? mfn).toBe(mfn);
      frameOf.set(key, mfn);
    }
  }
}

describe('PartitionedDedup (property)', () => {
  it('inline: random whole-page writes over random groups share within groups only, one frame per content', async () => {
    await fc.assert(
      fc.asyncProperty(groupsArb, fc.array(writeArb, { maxLength: 40 }), async (groups, writes) => {
        const { sh, doms } = await hostWith(groups);
        const d = new PartitionedDedup(() => new InlineDedup({ initialCapacity: 8 }));
        sh.attach(d);
        const content = doms.map(() => new Array<number>(GFNS).fill(0));
        for (const dom of doms) for (let g = 0; g < GFNS; g++) sh.populateZero(dom, g);
        for (const w of writes) {
          sh.writePage(doms[w.dom]!, w.gfn, CONTENTS[w.content]!);
          content[w.dom]![w.gfn] = w.content;
        }
        checkPartitioned(sh, d, doms, (i, g) => content[i]![g]!);
      }),
      { numRuns: 60 },
    );
  });

  it('ksm: random pages over random groups, scanned to the end, merge within groups only, one frame per content', async () => {
    await fc.assert(
      fc.asyncProperty(groupsArb, fc.array(fc.nat(CONTENTS.length - 1), { minLength: DOMS * GFNS, maxLength: DOMS * GFNS }), async (groups, contents) => {
        const { sh, doms } = await hostWith(groups);
        const d = new PartitionedDedup(() => new KsmDedup({ pages_to_scan: 5 }));
        sh.attach(d);
        for (const [i, dom] of doms.entries()) for (let g = 0; g < GFNS; g++) sh.populate(dom, g, CONTENTS[contents[i * GFNS + g]!]!);
        for (const dom of doms) d.setDomainMergeable!(dom, true);
        const scans = (g: number) => d.inner(g)!.stats()['full_scans']!;
        for (let i = 0; i < 200 && !d.groups.every((g) => (g === 0 && !groups.includes(0)) || scans(g) >= 3); i++) d.wake!(d.nextWakeNs!());
        checkPartitioned(sh, d, doms, (i, g) => contents[i * GFNS + g]!);
      }),
      { numRuns: 40 },
    );
  });
});
