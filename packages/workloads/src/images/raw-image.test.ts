import { truncateSync } from 'node:fs';
import { asDomId, PAGE_SIZE } from '@pagevisor/types';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeHost } from '../../tests/fake-host.js';
import { bootOnHypervisor, concat, expectNothingPopulated, imageSpec, mismatches, page, refusal, tempImages } from '../../tests/guest-images.js';
import { SyntheticGuest } from '../synthetic-guest.js';
import { openGuestImage } from './guest-image.js';
import type { ImageFormat } from './image-file.js';

const files = tempImages();
afterAll(() => files.remove());

describe('raw images', () => {
  const pages = [page(1), page(2), new Uint8Array(PAGE_SIZE), page(1), page(3)];
  const path = files.write('five.raw', concat(pages));

  it('validate to one region: page i at gfn i', () => {
    const image = openGuestImage(path, 'raw');
    expect(image).toMatchObject({ format: 'raw', path, fileBytes: 5 * PAGE_SIZE, pages: 5, dataPages: 5, skipped: [] });
    expect(image.regions).toEqual([{ index: 0, firstGfn: 0, pages: 5, address: '0x0', fileOffset: 0, fileBytes: 5 * PAGE_SIZE }]);
    const seen: [number, Uint8Array][] = [];
    image.forEachPage((gfn, p) => seen.push([gfn, p.slice()]));
    expect(seen.map(([g]) => g)).toEqual([0, 1, 2, 3, 4]);
    seen.forEach(([g, p]) => expect(p).toEqual(pages[g]));
  });

  it('reads pages by gfn in any order, and nothing outside the image', () => {
    const reader = openGuestImage(path, 'raw').reader({ chunkBytes: PAGE_SIZE });
    const dst = new Uint8Array(2 * PAGE_SIZE);
    for (const g of [4, 0, 3, 1, 2]) {
      expect(reader.readPage(g, dst, PAGE_SIZE)).toBe(true);
      expect(dst.subarray(PAGE_SIZE)).toEqual(pages[g]);
    }
    dst.fill(7);
    expect(reader.readPage(5, dst, 0)).toBe(false);
    expect(dst.every((b) => b === 7)).toBe(true);
  });

  it('boots into a guest that reads the dump at each gfn, the rest of its memory private', async () => {
    const { hv, dom, guest } = await bootOnHypervisor({ ...imageSpec(path, 'raw'), zeroFraction: 0.5 });
    expect(guest.state).toBe('done');
    expect([guest.imagePages, guest.zeroPages, guest.privatePages]).toEqual([5, 128, 123]);
    expect(mismatches(hv, dom, 5, (g) => pages[g]!)).toEqual([]);
    expect(mismatches(hv, dom, 133, (g) => (g < 5 ? pages[g]! : null))).toEqual([]);
    expect(hv.audit()).toEqual([]);
  });

  it('refuses a size that is not a whole number of pages, naming the size and the partial page', () => {
    const bad = files.write('partial.raw', concat([page(1), page(2), page(3), new Uint8Array(100)]));
    const e = refusal(() => openGuestImage(bad, 'raw'));
    expect(e.offset).toBe(3 * PAGE_SIZE);
    expect(e.message).toBe(
      `raw image ${bad}: offset 0x3000: the file's 12388 bytes (0x3064) end in a partial page of 100 bytes; expected a size that is a multiple of 4096 (whole pages)`,
    );
    expectNothingPopulated(bad, 'raw');
  });

  it('refuses an empty file', () => {
    const bad = files.write('empty.raw', new Uint8Array(0));
    const e = refusal(() => openGuestImage(bad, 'raw'));
    expect([e.offset, e.problem, e.expected]).toEqual([0, 'the file is empty', 'at least one page of 4096 bytes']);
    expectNothingPopulated(bad, 'raw');
  });

  it('fails the guest (read_image, EIO) when the file changes after it was validated', async () => {
    const changing = files.write('changing.raw', concat([page(1), page(2)]));
    const host = new FakeHost();
    const guest = new SyntheticGuest(imageSpec(changing, 'raw'), asDomId(1), 1, { memory: host, hypercalls: host });
    truncateSync(changing, PAGE_SIZE);
    const t = guest.nextEventNs();
    guest.step(t);
    expect(guest.state).toBe('failed');
    expect(guest.failure).toMatchObject({ op: 'read_image', errno: 'EIO', atNs: t });
    expect(guest.failure!.message).toContain(`raw image ${changing}: offset 0x0: the file changed after it was validated (4096 bytes`);
  });

  it('refuses an unknown format', () => {
    expect(() => openGuestImage(path, 'qcow2' as ImageFormat)).toThrow('unknown image format "qcow2"; expected "raw", "elf", "proc"');
  });
});
