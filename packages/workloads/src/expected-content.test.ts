import { describe, expect, it } from 'vitest';
import { HypercallClient } from '@pagevisor/hypercall-abi';
import { Hypervisor } from '@pagevisor/hypervisor';
import { FingerprintMemory, Fingerprinter } from '@pagevisor/machine';
import { asDomId, asGfn, asMfn, HypervisorError, PAGE_SIZE, Prng, type DomId } from '@pagevisor/types';
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

/** bytes(H(page)): what a frame holding `page` reads as on a machine of fingerprints. */
function generated(page: Uint8Array): Uint8Array {
  const fp = new Fingerprinter();
  fp.ofPage(page);
  const out = new Uint8Array(PAGE_SIZE);
  fp.bytes(fp.lo, fp.hi, 0, out, 0, PAGE_SIZE);
  return out;
}

/** A frame of a FingerprintMemory and what it reads as. */
function readFrame(ram: FingerprintMemory, mfn: number): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE);
  ram.read(asMfn(mfn), 0, out, 0, PAGE_SIZE);
  return out;
}

describe('ExpectedContent with fingerprints', () => {
  it('predicts bytes(H(page)) of every kind of page, the zero page as zeros', () => {
    const bytes = new ExpectedContent(8, { imageSeed: imageSeed('os') });
    const fps = new ExpectedContent(8, { imageSeed: imageSeed('os'), fingerprints: new Fingerprinter() });
    expect([bytes.contents, fps.contents]).toEqual(['bytes', 'fingerprints']);
    for (const m of [bytes, fps]) {
      m.populate(0, 8);
      m.setImagePage(1);
      m.setPrivatePage(2, 11, 22);
      m.setSeededPage(3, 7, 4);
      m.setPatternPage(4, 42);
      m.setPatternPage(5, 0);
    }
    expect(fps.expectedPage(0)).toEqual(new Uint8Array(PAGE_SIZE));
    expect(fps.expectedPage(5)).toEqual(new Uint8Array(PAGE_SIZE));
    for (let g = 0; g < 6; g++) {
      const want = generated(bytes.expectedPage(g)!);
      expect(fps.expectedPage(g), `gfn ${g}`).toEqual(want);
      // Generated pages: bytes 8.. are zeros, the other pages differ from what was written.
      expect(want.subarray(8).every((b) => b === 0)).toBe(true);
    }
    expect(Buffer.from(fps.expectedPage(1)!).equals(bytes.expectedPage(1)!)).toBe(false);
    const f = new Fingerprinter();
    f.ofPage(bytes.expectedPage(2)!);
    expect(fps.expectedFingerprint(2)).toEqual({ lo: f.lo, hi: f.hi });
    expect(bytes.expectedFingerprint(2)).toBeNull();
    fps.unpopulate(2, 1);
    expect([fps.expectedPage(2), fps.expectedFingerprint(2)]).toEqual([null, null]);
  });

  it('follows partial writes as the frame folds them, in order, and keeps no 4 KiB copy when they outgrow a page of records', () => {
    const ram = new FingerprintMemory({ frames: 4 });
    const m = new ExpectedContent(4, { fingerprints: new Fingerprinter() });
    m.populate(0, 4);
    const base = new Uint8Array(PAGE_SIZE).fill(1);
    m.setPatternPage(0, 1);
    ram.write(asMfn(0), 0, base, 0, PAGE_SIZE);
    const prng = new Prng(3);
    const bytes = new Uint8Array(100);
    let writes = 0;
    while (m.kindOf(0) !== ExpectedKind.fingerprint) {
      prng.fillBytes(bytes);
      const offset = prng.nextInt(PAGE_SIZE - bytes.length + 1);
      m.write(0, offset, bytes, 0, bytes.length);
      ram.write(asMfn(0), offset, bytes, 0, bytes.length);
      writes++;
      expect(m.expectedPage(0)).toEqual(readFrame(ram, 0));
    }
    // As in bytes mode the 40th record would pass 4096 bytes: folded, 8 bytes kept instead.
    expect(writes).toBe(40);
    expect(m.stats()).toMatchObject({ overlaidPages: 0, exactPages: 0 });
    expect(m.metadataBytes()).toBe(4 + 2 * 4 * 4);
    // More partial writes are records on top of the fingerprint; zeros into the zero page change nothing.
    m.write(0, 10, bytes, 0, 5);
    ram.write(asMfn(0), 10, bytes, 0, 5);
    expect(m.isOverlaid(0)).toBe(true);
    expect(m.expectedPage(0)).toEqual(readFrame(ram, 0));
    const zeros = new Uint8Array(16);
    m.write(1, 100, zeros, 0, 16);
    ram.write(asMfn(1), 100, zeros, 0, 16);
    expect(m.expectedPage(1)).toEqual(new Uint8Array(PAGE_SIZE));
    expect(readFrame(ram, 1)).toEqual(new Uint8Array(PAGE_SIZE));
    m.write(1, 0, bytes, 0, 3);
    ram.write(asMfn(1), 0, bytes, 0, 3);
    expect(m.expectedPage(1)).toEqual(readFrame(ram, 1));
    // A whole-page store of other content: its fingerprint, 8 bytes (the words), not a copy.
    const whole = new Uint8Array(PAGE_SIZE);
    prng.fillBytes(whole);
    m.write(2, 0, whole, 0, PAGE_SIZE);
    ram.write(asMfn(2), 0, whole, 0, PAGE_SIZE);
    expect(m.kindOf(2)).toBe(ExpectedKind.fingerprint);
    expect(m.expectedPage(2)).toEqual(readFrame(ram, 2));
    expect(m.stats().exactPages).toBe(0);
    // A page read back whole and written back whole is the same content.
    const back = readFrame(ram, 2);
    m.write(3, 0, back, 0, PAGE_SIZE);
    expect(m.expectedFingerprint(3)).toEqual(m.expectedFingerprint(2));
  });

  it('forks into a copy that still predicts fingerprints', () => {
    const a = new ExpectedContent(4, { fingerprints: new Fingerprinter() });
    a.populate(0, 4);
    a.setSeededPage(0, 5, 1);
    a.write(0, 10, Uint8Array.of(1, 2), 0, 2);
    const b = a.fork();
    expect(b.contents).toBe('fingerprints');
    expect(b.expectedPage(0)).toEqual(a.expectedPage(0));
    b.write(0, 20, Uint8Array.of(9), 0, 1);
    expect(b.expectedPage(0)).not.toEqual(a.expectedPage(0));
  });
});

describe('SyntheticGuest with trackContent on a machine of fingerprints', () => {
  async function bootOn(contents: 'bytes' | 'fingerprints'): Promise<{ hv: Hypervisor; guest: SyntheticGuest; dom: DomId }> {
    const hv = await Hypervisor.create({ frames: 1024, contents });
    const dom = hv.createDomain({ maxPages: 256 });
    const guest = new SyntheticGuest(spec, dom, 9, { memory: hv, hypercalls: new HypercallClient(hv, dom), control: hv }, {
      durationNs: 2e9,
      trackContent: true,
      ...(contents === 'fingerprints' ? { contentFingerprints: new Fingerprinter() } : {}),
    });
    runGuest(guest);
    return { hv, guest, dom };
  }

  function differingOn(hv: Hypervisor, guest: SyntheticGuest, dom: DomId): number[] {
    const out: number[] = [];
    const buf = new Uint8Array(PAGE_SIZE);
    for (let g = 0; g < guest.pages; g++) {
      const want = guest.content!.expectedPage(g);
      try {
        hv.readPage(dom, asGfn(g), 0, buf, 0, PAGE_SIZE);
      } catch (e) {
        if (!(e instanceof HypervisorError) || want !== null) throw e;
        continue;
      }
      if (want === null || !Buffer.from(buf).equals(want)) out.push(g);
    }
    return out;
  }

  it('predicts every page the guest reads back, exactly, and sees a frame changed behind its back', async () => {
    const fp = await bootOn('fingerprints');
    const bytes = await bootOn('bytes');
    expect(fp.guest.writesDone).toBe(800);
    expect(fp.guest.state).toBe('done');
    expect(differingOn(fp.hv, fp.guest, fp.dom)).toEqual([]);
    expect(differingOn(bytes.hv, bytes.guest, bytes.dom)).toEqual([]);
    // The same guest on bytes: the same sharing, and its model's pages are not what fingerprints read.
    expect(fp.hv.totals().machineFramesUsed).toBe(bytes.hv.totals().machineFramesUsed);
    expect(fp.guest.content!.stats().exactPages).toBe(0);
    expect(bytes.guest.content!.stats().exactPages).toBe(0);
    const mfn = fp.hv.p2m.table(fp.dom)!.mfn(asGfn(200));
    fp.hv.memory.write(mfn, 17, Uint8Array.of(1), 0, 1);
    expect(differingOn(fp.hv, fp.guest, fp.dom)).toEqual([200]);
  });
});
