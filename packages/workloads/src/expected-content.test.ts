import { describe, expect, it } from 'vitest';
import { asDomId, PAGE_SIZE, Prng } from '@pagevisor/types';
import { FakeHost } from '../tests/fake-host.js';
import { buildElfCore } from './images/build-image.js';
import { concat, page, runGuest, tempImages } from '../tests/guest-images.js';
import { ExpectedContent, ExpectedKind } from './expected-content.js';
import { fillImagePage, fillPrivatePage, fillPrivatePageFromSeeds, fillSeededPage, imageSeed, PAGE_WORDS } from './page-content.js';
import { SyntheticGuest, type SyntheticGuestSpec } from './synthetic-guest.js';

const spec: SyntheticGuestSpec = {
  memoryMiB: 1, // 256 pages
  image: { id: 'os', fraction: 0.5 },
  zeroFraction: 0.25,
  writeRatePagesPerS: 400,
  writeBytes: 48,
  wholePageWriteFraction: 0.2,
  bootPagesPerS: 4096,
};

/** Gfns of `guest` whose host page differs from what its content model expects. */
function differing(guest: SyntheticGuest, host: FakeHost, dom: number): number[] {
  const out: number[] = [];
  for (let g = 0; g < guest.pages; g++) {
    const want = guest.content!.expectedPage(g);
    const got = host.page(dom, g);
    if (want === null ? got !== undefined : got === undefined || !Buffer.from(got).equals(want)) out.push(g);
  }
  return out;
}

describe('fillPrivatePageFromSeeds', () => {
  it('is fillPrivatePage with the next two words of the stream', () => {
    const a = new Uint32Array(PAGE_WORDS);
    const b = new Uint32Array(PAGE_WORDS);
    const prng = new Prng(5);
    const twin = new Prng(5);
    fillPrivatePage(a, prng);
    const s0 = twin.nextU32();
    const s1 = twin.nextU32();
    fillPrivatePageFromSeeds(b, s0, s1);
    expect(b).toEqual(a);
    expect(prng.nextU32()).toBe(twin.nextU32());
  });
});

describe('ExpectedContent', () => {
  it('regenerates every kind of page from its record', () => {
    const m = new ExpectedContent(8, { imageSeed: imageSeed('os') });
    expect(m.expectedPage(0)).toBeNull();
    m.populate(0, 8);
    expect(m.expectedPage(0)!.every((b) => b === 0)).toBe(true);
    m.setImagePage(1);
    m.setPrivatePage(2, 11, 22);
    m.setSeededPage(3, 7, 4);
    m.setPatternPage(4, 42);
    const want = new Uint32Array(PAGE_WORDS);
    fillImagePage(want, 'os', 1);
    expect(m.expectedPage(1)).toEqual(new Uint8Array(want.buffer));
    fillPrivatePageFromSeeds(want, 11, 22);
    expect(m.expectedPage(2)).toEqual(new Uint8Array(want.buffer));
    fillSeededPage(want, 7, 4);
    expect(m.expectedPage(3)).toEqual(new Uint8Array(want.buffer));
    expect(m.expectedPage(4)).toEqual(new Uint8Array(PAGE_SIZE).fill(42));
    expect([0, 1, 2, 3, 4].map((g) => m.kindOf(g))).toEqual([ExpectedKind.zero, ExpectedKind.image, ExpectedKind.private, ExpectedKind.seeded, ExpectedKind.pattern]);
    m.unpopulate(2, 2);
    expect([m.isPopulated(2), m.isPopulated(3), m.isPopulated(4)]).toEqual([false, false, true]);
    expect(() => m.setImagePage(8)).toThrow(RangeError);
    expect(() => m.setFilePage(0)).toThrow(/no image file/);
  });

  it('records partial writes on top of the base, in order, until they would outgrow the page', () => {
    const m = new ExpectedContent(2);
    m.populate(0, 2);
    m.setPatternPage(0, 1);
    const shadow = new Uint8Array(PAGE_SIZE).fill(1);
    const prng = new Prng(3);
    const bytes = new Uint8Array(100);
    let writes = 0;
    while (m.kindOf(0) !== ExpectedKind.exact) {
      prng.fillBytes(bytes);
      const offset = prng.nextInt(PAGE_SIZE - bytes.length + 1);
      m.write(0, offset, bytes, 0, bytes.length);
      shadow.set(bytes, offset);
      writes++;
      expect(m.expectedPage(0)).toEqual(shadow);
    }
    // 4 + 100 bytes a record: the 40th would pass 4096 bytes.
    expect(writes).toBe(40);
    expect(m.stats()).toMatchObject({ overlaidPages: 0, exactPages: 1 });
    expect(m.metadataBytes()).toBe(2 + 2 * 2 * 4 + PAGE_SIZE);
    // Overlapping writes after that go to the copy; a whole-page write drops it.
    m.write(0, 10, bytes, 0, 5);
    shadow.set(bytes.subarray(0, 5), 10);
    expect(m.expectedPage(0)).toEqual(shadow);
    m.setPrivatePage(0, 1, 2);
    expect(m.stats()).toMatchObject({ overlaidPages: 0, exactPages: 0 });
    m.write(1, 0, bytes, 0, 8);
    expect(m.isOverlaid(1)).toBe(true);
    expect(m.metadataBytes()).toBe(2 + 2 * 2 * 4 + 12);
    m.write(1, 4, bytes, 0, 8);
    expect(m.metadataBytes()).toBe(2 + 2 * 2 * 4 + 24);
    m.write(1, 2, bytes, 0, 1);
    expect(m.metadataBytes()).toBe(2 + 2 * 2 * 4 + 48);
    const later = new Uint8Array(PAGE_SIZE);
    later.set(bytes.subarray(0, 8), 0);
    later.set(bytes.subarray(0, 8), 4);
    later.set(bytes.subarray(0, 1), 2);
    expect(m.expectedPage(1)).toEqual(later);
    m.unpopulate(1, 1);
    expect(m.metadataBytes()).toBe(2 + 2 * 2 * 4);
    expect(() => m.write(1, 4090, bytes, 0, 8)).toThrow(RangeError);
  });

  it('forks into a copy that changes apart from its original', () => {
    const a = new ExpectedContent(8, { imageSeed: 3 });
    a.setSeededPage(0, 5, 1);
    a.setImagePage(1);
    a.write(0, 10, Uint8Array.of(1, 2), 0, 2);
    const b = a.fork();
    for (let g = 0; g < 8; g++) expect(b.expectedPage(g)).toEqual(a.expectedPage(g));
    b.write(0, 20, Uint8Array.of(9), 0, 1);
    a.setPatternPage(1, 7);
    expect(a.expectedPage(0)![20]).not.toBe(9);
    expect(b.expectedPage(0)![20]).toBe(9);
    expect(b.expectedPage(1)).not.toEqual(a.expectedPage(1));
    expect(b.kindOf(1)).toBe(ExpectedKind.image);
  });

  it('costs 1 byte a page until a seeded page needs its two words', () => {
    const m = new ExpectedContent(1000, { imageSeed: 1 });
    m.populate(0, 1000);
    for (let g = 0; g < 500; g++) m.setImagePage(g);
    expect(m.metadataBytes()).toBe(1000);
    m.setPrivatePage(999, 1, 2);
    expect(m.metadataBytes()).toBe(9000);
  });
});

describe('SyntheticGuest with trackContent', () => {
  it('does exactly what it does without it, and its model matches every page it wrote', () => {
    const plain = new FakeHost();
    const tracked = new FakeHost();
    const a = new SyntheticGuest(spec, asDomId(1), 9, { memory: plain, hypercalls: plain }, { durationNs: 2e9 });
    const b = new SyntheticGuest(spec, asDomId(1), 9, { memory: tracked, hypercalls: tracked }, { durationNs: 2e9, trackContent: true });
    runGuest(a);
    runGuest(b);
    expect(a.content).toBeNull();
    expect(tracked.log).toEqual(plain.log);
    expect(b.writesDone).toBe(800);
    expect(b.wholePageWrites).toBeGreaterThan(0);
    expect(differing(b, tracked, 1)).toEqual([]);
    const st = b.content!.stats();
    expect(st.overlaidPages).toBeGreaterThan(0);
    // Far less than a copy of every page.
    expect(st.bytes).toBeLessThan((b.pages * PAGE_SIZE) / 4);
  });

  it('keeps exact copies of pages written past a page of records', () => {
    const host = new FakeHost();
    // 1000-byte writes to 16 pages: each page takes several, its records outgrow it.
    const g = new SyntheticGuest(
      { ...spec, writeBytes: 1000, wholePageWriteFraction: 0, workingSet: { fraction: 1 / 16, moveEveryS: 100 } },
      asDomId(2),
      4,
      { memory: host, hypercalls: host },
      { durationNs: 1e9, trackContent: true },
    );
    runGuest(g);
    expect(g.content!.stats().exactPages).toBeGreaterThan(0);
    expect(differing(g, host, 2)).toEqual([]);
  });

  it('tells a page it did not write apart: a store behind its back is seen', () => {
    const host = new FakeHost();
    const g = new SyntheticGuest(spec, asDomId(1), 9, { memory: host, hypercalls: host }, { trackContent: true });
    runGuest(g);
    expect(differing(g, host, 1)).toEqual([]);
    host.page(1, 200)![17] ^= 1;
    expect(differing(g, host, 1)).toEqual([200]);
  });

  it('reads file pages back from the image, holes as zeros', () => {
    const images = tempImages();
    try {
      // gfns 0..3 from the file, 4..7 a hole, 8..9 from the file: 10 pages of a 256-page guest.
      const path = images.write('g.elf', buildElfCore([
        { paddr: 0, data: concat([page(1), page(2), page(3), page(4)]) },
        { paddr: 8 * PAGE_SIZE, data: concat([page(5), page(6)]) },
      ]));
      const host = new FakeHost();
      const g = new SyntheticGuest(
        { ...spec, image: { id: 'none', fraction: 0, path, format: 'elf' }, zeroFraction: 0.5 },
        asDomId(3),
        1,
        { memory: host, hypercalls: host },
        { durationNs: 1e9, trackContent: true },
      );
      runGuest(g);
      expect(g.imagePages).toBe(10);
      expect([0, 4, 8, 200].map((x) => g.content!.kindOf(x))).toEqual([ExpectedKind.file, ExpectedKind.zero, ExpectedKind.file, ExpectedKind.private]);
      expect(differing(g, host, 3)).toEqual([]);
    } finally {
      images.remove();
    }
  });
});
