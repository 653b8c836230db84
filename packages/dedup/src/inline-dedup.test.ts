import { ZERO_PAGE } from '@pagevisor/machine';
import { asMfn, HypervisorError, INVALID_MFN, InvariantError, PAGE_SIZE } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { machineHost, numberedPage, randomPage } from '../tests/machine-host.js';
import { SharingHost } from '../tests/sharing-host.js';
import { DEFAULT_INLINE_DEDUP_OPTIONS, InlineDedup, PartitionedDedup, type InlineDedupOptions } from './index.js';
import { SAMPLE_STRIDE } from './inline-dedup.js';

async function attached(frames = 64, opts?: InlineDedupOptions) {
  const h = await machineHost(frames);
  const dedup = new InlineDedup(opts);
  dedup.attach(h.host);
  return { ...h, dedup };
}

describe('InlineDedup options', () => {
  it('defaults to 1024 slots and a load factor of 0.5', () => {
    expect(DEFAULT_INLINE_DEDUP_OPTIONS).toEqual({ initialCapacity: 1024, maxLoadFactor: 0.5 });
    const dedup = new InlineDedup();
    expect([dedup.name, dedup.inline, dedup.populateZero, dedup.capacity]).toEqual(['inline', true, true, 1024]);
  });

  it.each([0, 1, 3, 1000, 1.5, 2 ** 31, Number.NaN])('refuses initialCapacity %s with EINVAL', (initialCapacity) => {
    expect(() => new InlineDedup({ initialCapacity })).toThrow(HypervisorError);
    expect(() => new InlineDedup({ initialCapacity })).toThrow(/EINVAL: initialCapacity/);
  });

  it.each([0, 1, -0.5, 1.5, Number.NaN])('refuses maxLoadFactor %s with EINVAL', (maxLoadFactor) => {
    expect(() => new InlineDedup({ maxLoadFactor })).toThrow(/EINVAL: maxLoadFactor/);
  });
});

describe('InlineDedup.attach', () => {
  it('indexes the zero frame so whole-page zero writes find it', async () => {
    const { dedup, memory, zeroMfn } = await attached();
    expect(dedup.contains(zeroMfn)).toBe(true);
    expect(dedup.size).toBe(1);
    expect(dedup.lookup(new Uint8Array(PAGE_SIZE), memory.hashPage(ZERO_PAGE))).toBe(zeroMfn);
    expect(dedup.audit()).toEqual([]);
  });

  it('never drops the zero frame on remove', async () => {
    const { dedup, zeroMfn } = await attached();
    dedup.remove(zeroMfn);
    expect(dedup.contains(zeroMfn)).toBe(true);
    expect(dedup.stats().removes).toBe(0);
    expect(dedup.audit()).toEqual([]);
  });

  it('refuses a zero frame that holds non-zero bytes, and a second attach', async () => {
    const { host, memory, zeroMfn } = await machineHost(8);
    memory.write(zeroMfn, 100, new Uint8Array([1]), 0, 1);
    expect(() => new InlineDedup().attach(host)).toThrow(InvariantError);
    memory.zeroFrame(zeroMfn);
    const dedup = new InlineDedup();
    dedup.attach(host);
    expect(() => dedup.attach(host)).toThrow(/attach called twice/);
  });

  it('refuses lookups and inserts before attach; remove and contains see nothing', () => {
    const dedup = new InlineDedup();
    expect(() => dedup.lookup(new Uint8Array(PAGE_SIZE), 0)).toThrow(InvariantError);
    expect(() => dedup.insert(asMfn(1), 0, 'miss')).toThrow(InvariantError);
    dedup.remove(asMfn(1));
    expect(dedup.contains(asMfn(1))).toBe(false);
    expect(dedup.audit()).toEqual(['inline dedup: not attached']);
  });
});

describe('InlineDedup lookup', () => {
  it('hits on identical bytes and misses on different bytes', async () => {
    const { dedup, memory, frameWith } = await attached();
    const page = randomPage(1);
    const mfn = frameWith(page);
    dedup.insert(mfn, memory.hashFrame(mfn), 'miss');
    const copy = page.slice();
    expect(dedup.lookup(copy, memory.hashPage(copy))).toBe(mfn);
    const other = page.slice();
    other[PAGE_SIZE - 1]! ^= 1;
    expect(dedup.lookup(other, memory.hashPage(other))).toBe(INVALID_MFN);
    expect(dedup.stats()).toMatchObject({ lookups: 2, hits: 1, misses: 1, inserts: 2, size: 2 });
    expect(dedup.audit()).toEqual([]);
  });

  it('confirms a shared hash by full compare: two contents under hash 42', async () => {
    const { dedup, frameWith } = await attached();
    const pageA = randomPage(10);
    const pageB = randomPage(11);
    const mfnA = frameWith(pageA);
    const mfnB = frameWith(pageB);
    dedup.insert(mfnA, 42, 'miss');
    dedup.insert(mfnB, 42, 'miss');
    // A sits earlier in the probe sequence, so finding B first compares against A and fails.
    expect(dedup.lookup(pageB, 42)).toBe(mfnB);
    expect(dedup.stats().collisions).toBe(1);
    expect(dedup.lookup(pageA, 42)).toBe(mfnA);
    expect(dedup.stats().collisions).toBe(1);
    expect(dedup.lookup(randomPage(12), 42)).toBe(INVALID_MFN);
    expect(dedup.stats()).toMatchObject({ collisions: 3, hits: 2, misses: 1 });
    // Once A is gone, B is found without a failed compare.
    dedup.remove(mfnA);
    expect(dedup.lookup(pageB, 42)).toBe(mfnB);
    expect(dedup.lookup(pageA, 42)).toBe(INVALID_MFN);
    expect(dedup.stats().collisions).toBe(4);
  });

  it('misses when the content is indexed under another hash', async () => {
    const { dedup, frameWith } = await attached();
    const page = randomPage(3);
    dedup.insert(frameWith(page), 42, 'miss');
    expect(dedup.lookup(page, 43)).toBe(INVALID_MFN);
  });

  it('refuses a page that is not PAGE_SIZE bytes', async () => {
    const { dedup } = await attached();
    expect(() => dedup.lookup(new Uint8Array(100), 0)).toThrow(InvariantError);
  });
});

describe('InlineDedup insert and remove', () => {
  it('refuses to index a frame twice and changes nothing', async () => {
    const { dedup, memory, frameWith } = await attached();
    const mfn = frameWith(randomPage(4));
    dedup.insert(mfn, memory.hashFrame(mfn), 'miss');
    expect(() => dedup.insert(mfn, memory.hashFrame(mfn), 'miss')).toThrow(/already indexed/);
    expect(() => dedup.insert(mfn, 7, 'miss')).toThrow(InvariantError);
    expect(dedup.size).toBe(2);
    expect(dedup.audit()).toEqual([]);
  });

  it('refuses an mfn outside machine memory', async () => {
    const { dedup } = await attached(8);
    expect(() => dedup.insert(asMfn(8), 0, 'miss')).toThrow(InvariantError);
    expect(() => dedup.remove(asMfn(8))).toThrow(InvariantError);
    expect(dedup.contains(asMfn(8))).toBe(false);
    expect(dedup.contains(asMfn(-1))).toBe(false);
  });

  it('removes by the key kept for the frame: no hashing, even for a frame indexed under another hash', async () => {
    const { dedup, memory, frameWith } = await attached();
    const mfns = [1, 2, 3].map((i) => frameWith(randomPage(40 + i)));
    for (const mfn of mfns) dedup.insert(mfn, memory.hashFrame(mfn), 'miss');
    const odd = frameWith(randomPage(50));
    dedup.insert(odd, 12345, 'miss');
    const hashFrame = memory.hashFrame.bind(memory);
    let hashed = 0;
    memory.hashFrame = (mfn) => (hashed++, hashFrame(mfn));
    for (const mfn of [...mfns, odd]) dedup.remove(mfn);
    memory.hashFrame = hashFrame;
    expect(hashed).toBe(0);
    expect(dedup.stats()).toMatchObject({ removes: 4, size: 1 });
    expect(dedup.audit()).toEqual([]);
  });

  it('misses after remove; removing a frame that is not indexed does nothing', async () => {
    const { dedup, memory, frameWith } = await attached();
    const page = randomPage(5);
    const mfn = frameWith(page);
    const unindexed = frameWith(randomPage(6));
    dedup.insert(mfn, memory.hashFrame(mfn), 'miss');
    dedup.remove(mfn);
    expect(dedup.contains(mfn)).toBe(false);
    expect(dedup.lookup(page, memory.hashPage(page))).toBe(INVALID_MFN);
    dedup.remove(mfn);
    dedup.remove(unindexed);
    expect(dedup.stats()).toMatchObject({ removes: 1, size: 1 });
    expect(dedup.audit()).toEqual([]);
    // The frame can be indexed again.
    dedup.insert(mfn, memory.hashFrame(mfn), 'miss');
    expect(dedup.lookup(page, memory.hashPage(page))).toBe(mfn);
  });

  it('stays right through growth and tombstones: 4000 frames in, half out', async () => {
    const n = 4000;
    const { dedup, memory, frameWith } = await attached(n + 8, { initialCapacity: 2 });
    const mfns = [];
    for (let i = 0; i < n; i++) {
      const mfn = frameWith(numberedPage(i + 1));
      dedup.insert(mfn, memory.hashFrame(mfn), 'miss');
      mfns.push(mfn);
    }
    expect(dedup.capacity).toBeGreaterThanOrEqual(2 * (n + 1));
    expect(dedup.stats().rebuilds).toBeGreaterThan(5);
    for (let i = 0; i < n; i += 2) dedup.remove(mfns[i]!);
    expect(dedup.size).toBe(n / 2 + 1);
    for (let i = 0; i < n; i++) {
      const page = numberedPage(i + 1);
      expect(dedup.lookup(page, memory.hashPage(page))).toBe(i % 2 === 0 ? INVALID_MFN : mfns[i]);
    }
    expect(dedup.audit()).toEqual([]);
    // Re-insert the removed half; tombstones are reused or purged and every page is found.
    for (let i = 0; i < n; i += 2) dedup.insert(mfns[i]!, memory.hashFrame(mfns[i]!), 'miss');
    for (let i = 0; i < n; i++) {
      const page = numberedPage(i + 1);
      expect(dedup.lookup(page, memory.hashPage(page))).toBe(mfns[i]);
    }
    expect(dedup.audit()).toEqual([]);
  });

  it('does not grow under churn at a steady size', async () => {
    const { dedup, memory, frameWith } = await attached(64, { initialCapacity: 64 });
    // 15 frames and the zero frame fill half of the 32 slots the load factor allows.
    const mfns = Array.from({ length: 40 }, (_, i) => frameWith(numberedPage(i + 1)));
    for (let i = 0; i < 15; i++) dedup.insert(mfns[i]!, memory.hashFrame(mfns[i]!), 'miss');
    for (let round = 0; round < 5000; round++) {
      const out = mfns[round % 40]!;
      const into = mfns[(round + 15) % 40]!;
      dedup.remove(out);
      dedup.insert(into, memory.hashFrame(into), 'miss');
    }
    expect(dedup.capacity).toBe(64);
    expect(dedup.size).toBe(16);
    expect(dedup.audit()).toEqual([]);
  });

  it('counts its typed arrays as metadata: 4 bytes a slot, 4 bytes and 1 bit a frame', async () => {
    const { dedup } = await attached(100, { initialCapacity: 256 });
    expect(dedup.metadataBytes()).toBe(256 * 4 + 100 * 4 + Math.ceil(100 / 32) * 4);
  });
});

describe('InlineDedup.audit', () => {
  it('names a frame whose content changed after insert', async () => {
    const { dedup, memory, frameWith } = await attached();
    const mfn = frameWith(randomPage(7));
    dedup.insert(mfn, memory.hashFrame(mfn), 'miss');
    memory.write(mfn, 17, new Uint8Array([0xaa, 0x55]), 0, 2);
    const problems = dedup.audit();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`mfn ${mfn} .*changed`));
  });

  it('names a frame indexed under a hash that is not its content hash', async () => {
    const { dedup, frameWith } = await attached();
    const mfn = frameWith(randomPage(8));
    dedup.insert(mfn, 42, 'miss');
    expect(dedup.audit()).toEqual([expect.stringMatching(new RegExp(`mfn ${mfn} indexed under hash 42`))]);
  });

  it('names an indexed frame that was freed', async () => {
    const { dedup, memory, table, frameWith } = await attached();
    const mfn = frameWith(randomPage(9));
    dedup.insert(mfn, memory.hashFrame(mfn), 'miss');
    table.freeFrame(mfn);
    expect(dedup.audit()).toEqual([`inline dedup: mfn ${mfn} is indexed but free`]);
  });

  it('names a shared frame that is not indexed: it indexes every frame offered, whatever the reason', async () => {
    const sh = await SharingHost.create(32);
    const [a, b] = [sh.addDomain(1, 4, 0), sh.addDomain(2, 4, 0)];
    const dedup = new InlineDedup();
    sh.attach(dedup);
    sh.populate(a, 0, numberedPage(1));
    sh.populate(b, 0, numberedPage(2));
    sh.populateZero(a, 1);
    sh.populateZero(b, 1);
    sh.writePage(b, 1, numberedPage(1)); // a miss: b's page 1 is indexed ('miss')
    sh.writePage(a, 1, numberedPage(1)); // a hit: b's frame becomes shared, indexed already
    const shared = sh.mfnOf(a, 1);
    expect([shared === sh.mfnOf(b, 1), dedup.contains(shared), dedup.audit()]).toEqual([true, true, []]);
    dedup.remove(shared); // behind the host's back
    expect(dedup.audit()).toEqual([`inline dedup: shared mfn ${shared} is not indexed, but every frame offered is`]);
    // Private frames never offered (populated, not written whole) are not required.
    expect(dedup.contains(sh.mfnOf(a, 0))).toBe(false);
  });

  it('under PartitionedDedup, each group answers for the shared frames of its own domains', async () => {
    const sh = await SharingHost.create(32);
    const [a, b, c] = [sh.addDomain(1, 4, 1), sh.addDomain(2, 4, 1), sh.addDomain(3, 4, 2)];
    const d = new PartitionedDedup(() => new InlineDedup());
    sh.attach(d);
    for (const dom of [a, b, c]) {
      sh.populateZero(dom, 0);
      sh.writePage(dom, 0, numberedPage(5));
    }
    const shared = sh.mfnOf(a, 0);
    expect([sh.mfnOf(b, 0), d.audit()]).toEqual([shared, []]);
    d.inner(1)!.remove(shared);
    expect(d.audit()).toEqual([`group 1: inline dedup: shared mfn ${shared} is not indexed, but every frame offered is`]);
  });
});

describe('InlineDedup.audit depth', () => {
  it("re-hashes every indexed frame when full, one in SAMPLE_STRIDE on a 'sample' audit; checks the rest either way", async () => {
    const { dedup, memory, frameWith } = await attached(512);
    const mfns = Array.from({ length: 300 }, (_, i) => frameWith(numberedPage(i + 1)));
    for (const m of mfns) dedup.insert(m, memory.hashFrame(m), 'miss');
    expect([dedup.audit('full'), dedup.audit('sample')]).toEqual([[], []]);
    // Every indexed frame's content changes behind the index's back.
    const byte = new Uint8Array(1);
    for (const m of mfns) {
      memory.read(m, 0, byte, 0, 1);
      memory.write(m, 0, Uint8Array.of(byte[0]! ^ 0xff), 0, 1);
    }
    const changed = /indexed under hash .* \(changed while indexed\)/;
    const full = dedup.audit('full').filter((p) => changed.test(p));
    const sampled = dedup.audit('sample').filter((p) => changed.test(p));
    expect(full).toHaveLength(300);
    expect(dedup.audit()).toEqual(dedup.audit('full'));
    // 301 live slots (the zero frame's among them): slots 0, 64, ..., 256 are re-hashed.
    expect(sampled.length).toBeGreaterThanOrEqual(Math.floor(300 / SAMPLE_STRIDE));
    expect(sampled.length).toBeLessThanOrEqual(Math.ceil(301 / SAMPLE_STRIDE));
    expect(sampled.every((p) => full.includes(p))).toBe(true);
  });
});
