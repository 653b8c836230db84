import { asDomId, PAGE_SIZE } from '@pagevisor/types';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeHost } from '../../tests/fake-host.js';
import { bootOnHypervisor, concat, imageSpec, mismatches, page, tempImages } from '../../tests/guest-images.js';
import { parseScenario, ScenarioError, type ScenarioInput } from '../scenario.js';
import { SyntheticGuest } from '../synthetic-guest.js';
import { buildElfCore } from './build-image.js';
import { checkScenarioImages, resolveImagePaths } from './scenario-images.js';

const files = tempImages();
afterAll(() => files.remove());

function scenario(image: unknown, memoryMiB = 1): ScenarioInput {
  return { name: 's', machine: { memoryMiB: 8 }, guests: [{ name: 'vm', memoryMiB, image } as ScenarioInput['guests'][number]] };
}

function issues(input: ScenarioInput): readonly string[] {
  try {
    parseScenario(input);
  } catch (e) {
    if (e instanceof ScenarioError) return e.issues;
    throw e;
  }
  return [];
}

describe('file images in scenarios', () => {
  it('accept { path, format } beside the synthetic { id, fraction }', () => {
    expect(parseScenario(scenario({ path: 'a.raw', format: 'raw' })).guests[0]!.image).toEqual({ id: 'none', fraction: 0, path: 'a.raw', format: 'raw' });
    expect(parseScenario(scenario({ id: 'os', fraction: 0.5 })).guests[0]!.image).toEqual({ id: 'os', fraction: 0.5 });
    expect(parseScenario(scenario(undefined)).guests[0]!.image).toEqual({ id: 'none', fraction: 0 });
  });

  it('refuse a path without a format, a format without a path, an unknown format and mixed forms', () => {
    expect(issues(scenario({ path: 'a.raw' }))).toEqual(['guests[0].image.format: missing; must be "raw", "elf" or "proc" (the file\'s format)']);
    expect(issues(scenario({ format: 'elf' }))).toEqual(['guests[0].image.path: missing; a file image needs a path with its format']);
    expect(issues(scenario({ path: 'a', format: 'qcow2' }))).toEqual(['guests[0].image.format: must be "raw", "elf" or "proc"']);
    expect(issues(scenario({ path: '', format: 'raw' }))).toEqual(['guests[0].image.path: must be a non-empty string']);
    expect(issues(scenario({ path: 'a', format: 'raw', id: 'os', fraction: 0.5 }))).toEqual([
      'guests[0].image.fraction: applies to a synthetic image only; a file image takes its size from the file',
      'guests[0].image.id: applies to a synthetic image only; a file image is identified by its path',
    ]);
  });

  it('resolve relative paths against the scenario file\'s directory, leaving the rest alone', () => {
    const s = parseScenario({
      name: 's',
      machine: { memoryMiB: 8 },
      guests: [
        { name: 'a', memoryMiB: 1, image: { path: 'images/a.raw', format: 'raw' } },
        { name: 'b', memoryMiB: 1, image: { path: '/abs/b.elf', format: 'elf' } },
        { name: 'c', memoryMiB: 1, image: { id: 'os', fraction: 0.5 } },
      ],
    });
    const r = resolveImagePaths(s, '/work/scenarios');
    expect(r.guests.map((g) => g.image.path)).toEqual(['/work/scenarios/images/a.raw', '/abs/b.elf', undefined]);
    expect(r.guests[1]).toBe(s.guests[1]);
    expect(s.guests[0]!.image.path).toBe('images/a.raw');
  });

  it('check that every image is valid and fits its guest, naming each problem by guest', () => {
    const ok = files.write('ok.raw', concat([page(1), page(2)]));
    const big = files.write('big.elf', buildElfCore([{ paddr: 0x100000, data: page(3) }])); // gfn 256: 257 pages
    const bad = files.write('bad.raw', new Uint8Array(PAGE_SIZE + 1));
    const images = checkScenarioImages(parseScenario(scenario({ path: ok, format: 'raw' })));
    expect(images.map((i) => i?.pages)).toEqual([2]);
    const s = parseScenario({
      name: 's',
      machine: { memoryMiB: 8 },
      guests: [
        { name: 'a', memoryMiB: 1, image: { path: big, format: 'elf' } },
        { name: 'b', memoryMiB: 1, image: { path: bad, format: 'raw' } },
        { name: 'c', memoryMiB: 1, image: { path: `${ok}.missing`, format: 'raw' } },
        { name: 'd', memoryMiB: 1 },
      ],
    });
    expect(() => checkScenarioImages(s)).toThrow(ScenarioError);
    try {
      checkScenarioImages(s);
    } catch (e) {
      expect((e as ScenarioError).issues).toEqual([
        `guests[0].memoryMiB: 1 MiB (256 pages) cannot hold elf image ${big}, which spans 257 pages (gfns 0 .. 256); give at least 2`,
        `guests[1].image.path: raw image ${bad}: offset 0x1000: the file's 4097 bytes (0x1001) end in a partial page of 1 bytes; expected a size that is a multiple of 4096 (whole pages)`,
        `guests[2].image.path: cannot read ${ok}.missing: ENOENT: no such file or directory, open '${ok}.missing'`,
      ]);
    }
  });
});

describe('a guest booting a file image', () => {
  it('refuses an image larger than itself before any hypercall', () => {
    const big = files.write('too-big.elf', buildElfCore([{ paddr: 0x100000, data: page(3) }]));
    const host = new FakeHost();
    expect(() => new SyntheticGuest(imageSpec(big, 'elf'), asDomId(1), 1, { memory: host, hypercalls: host })).toThrow(
      `SyntheticGuest: elf image ${big} spans 257 pages (gfns 0 .. 256), more than the guest's 256 pages (1 MiB); the guest needs at least 2 MiB`,
    );
    expect(host.populateCalls).toBe(0);
  });

  it('boots an image across boot batches, then its zero and private pages', async () => {
    const pages = Array.from({ length: 300 }, (_, i) => page(1000 + i));
    const path = files.write('300.raw', concat(pages));
    const { hv, dom, guest } = await bootOnHypervisor({ ...imageSpec(path, 'raw', 2), zeroFraction: 0.25 }, 2048, 64);
    expect([guest.state, guest.imagePages, guest.zeroPages, guest.privatePages, guest.pagesBooted]).toEqual(['done', 300, 128, 84, 512]);
    expect(mismatches(hv, dom, 428, (g) => pages[g] ?? null)).toEqual([]);
    const t = hv.totals();
    // 300 image pages, 84 private pages, the zero frame; the 128 zero pages map it.
    expect([t.machineFramesUsed, t.zeroPages]).toEqual([300 + 84 + 1, 128]);
  });
});
