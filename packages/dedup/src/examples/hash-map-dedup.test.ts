import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { INVALID_MFN, InvariantError, PAGE_SIZE, asMfn } from '@pagevisor/types';
import { fakeHost, filledPage } from '../../tests/fake-host.js';
import { machineHost, numberedPage, randomPage } from '../../tests/machine-host.js';
import { SharingHost } from '../../tests/sharing-host.js';
import { HashMapDedup } from './hash-map-dedup.js';

describe('HashMapDedup (the README example)', () => {
  it('indexes the zero frame at attach and finds it for a page of zeros', async () => {
    const { host, zeroMfn } = await machineHost(16);
    const d = new HashMapDedup();
    d.attach(host);
    const zeros = new Uint8Array(PAGE_SIZE);
    expect(d.lookup(zeros, host.memory.hashPage(zeros))).toBe(zeroMfn);
    d.remove(zeroMfn); // never written nor freed: stays
    expect(d.contains(zeroMfn)).toBe(true);
    expect([d.size, d.audit()]).toEqual([1, []]);
  });

  it('finds frames by content, forgets removed ones, and counts what happened', async () => {
    const { host, memory, frameWith } = await machineHost(16);
    const d = new HashMapDedup();
    d.attach(host);
    const page = randomPage(1);
    const mfn = frameWith(page);
    d.insert(mfn, memory.hashFrame(mfn), 'miss');
    expect(d.lookup(page, memory.hashPage(page))).toBe(mfn);
    const other = randomPage(2);
    expect(d.lookup(other, memory.hashPage(other))).toBe(INVALID_MFN);
    expect(d.contains(mfn)).toBe(true);
    d.remove(mfn);
    d.remove(mfn); // twice: nothing more to forget
    d.remove(asMfn(9)); // never indexed
    expect(d.contains(mfn)).toBe(false);
    expect(d.lookup(page, memory.hashPage(page))).toBe(INVALID_MFN);
    expect(d.stats()).toEqual({ lookups: 3, hits: 1, misses: 2, collisions: 0, inserts: 2, insertsShared: 1, removes: 1, size: 1 });
    expect(d.metadataBytes()).toBe(64);
    expect(d.audit()).toEqual([]);
  });

  it('never returns a frame whose content differs, however the hashes collide', () => {
    // Every page hashes to 0: each lookup must compare in full.
    const host = fakeHost(8, () => 0);
    const d = new HashMapDedup();
    d.attach(host);
    const frames = [1, 2, 3].map((fill) => {
      const mfn = host.frames.take(fill);
      host.memory.write(mfn, 0, filledPage(fill), 0, PAGE_SIZE);
      d.insert(mfn, 0, 'miss');
      return mfn;
    });
    expect(d.lookup(filledPage(3), 0)).toBe(frames[2]);
    expect(d.lookup(filledPage(4), 0)).toBe(INVALID_MFN);
    expect(d.stats().collisions).toBe(3 + 4); // the zero frame and two others, then all four
    d.remove(frames[1]!);
    expect(d.lookup(filledPage(2), 0)).toBe(INVALID_MFN);
    expect(d.audit()).toEqual([]);
  });

  it('refuses use before attach, a second attach and a frame indexed twice', async () => {
    const { host, memory, frameWith } = await machineHost(8);
    const d = new HashMapDedup();
    expect(() => d.lookup(new Uint8Array(PAGE_SIZE), 0)).toThrow(InvariantError);
    expect(() => d.insert(asMfn(1), 0, 'miss')).toThrow(InvariantError);
    expect(d.audit()).toEqual(['hash-map dedup: not attached']);
    d.attach(host);
    expect(() => d.attach(host)).toThrow(/attach called twice/);
    const mfn = frameWith(numberedPage(1));
    d.insert(mfn, memory.hashFrame(mfn), 'miss');
    expect(() => d.insert(mfn, memory.hashFrame(mfn), 'miss')).toThrow(/indexed already/);
  });

  it('audits: a frame changed while indexed, a frame freed while indexed', async () => {
    const { host, memory, table, frameWith } = await machineHost(8);
    const d = new HashMapDedup();
    d.attach(host);
    const a = frameWith(numberedPage(1));
    const b = frameWith(numberedPage(2));
    d.insert(a, memory.hashFrame(a), 'miss');
    d.insert(b, memory.hashFrame(b), 'miss');
    memory.write(a, 0, Uint8Array.of(9), 0, 1);
    table.freeFrame(b);
    expect(d.audit()).toEqual([`mfn ${a} changed while indexed`, `mfn ${b} is indexed but free`]);
  });

  it('takes every offer, whatever the reason, so its audit names a shared frame it does not hold', async () => {
    const sh = await SharingHost.create(16);
    const [a, b] = [sh.addDomain(1, 4, 0), sh.addDomain(2, 4, 0)];
    const d = new HashMapDedup();
    sh.attach(d);
    sh.populateZero(a, 0);
    sh.populateZero(b, 0);
    sh.writePage(a, 0, numberedPage(3)); // 'miss'
    sh.writePage(b, 0, numberedPage(3)); // a hit: a's frame becomes shared
    const shared = sh.mfnOf(b, 0);
    expect([d.contains(shared), d.stats()['inserts'], d.stats()['insertsShared'], d.audit()]).toEqual([true, 2, 1, []]);
    d.remove(shared);
    expect(d.audit()).toEqual([`shared mfn ${shared} is not indexed, but every frame offered is`]);
  });

  it('is embedded verbatim in the README', () => {
    const code = readFileSync(new URL('./hash-map-dedup.ts', import.meta.url), 'utf8');
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain('```ts\n' + code + '```');
  });
});
