import { PAGE_SIZE } from '@pagevisor/types';
import { afterAll, describe, expect, it } from 'vitest';
import { bootOnHypervisor, concat, expectNothingPopulated, imageSpec, mismatches, page, refusal, tempImages } from '../../tests/guest-images.js';
import { buildProcImage } from './build-image.js';
import { openGuestImage } from './guest-image.js';
import { PROC_ENTRY_BYTES, PROC_HEADER_BYTES } from './proc-image.js';

const files = tempImages();
afterAll(() => files.remove());

const [A, B, C, D] = [page(20), page(21), page(22), page(23)];
const Z = new Uint8Array(PAGE_SIZE);
/** Table entry k's file offset (regions first, then skipped ranges). */
const entry = (k: number): number => PROC_HEADER_BYTES + k * PROC_ENTRY_BYTES;

/** Three regions far apart in the process (5 pages: A B | Z | C D) and two skipped ranges. */
function capture(): Uint8Array {
  return buildProcImage(
    [
      { vaddr: 0x5555_0000_0000, data: concat([A, B]), perms: 'r-xp', name: '/usr/bin/app' },
      { vaddr: 0x5555_0001_0000, data: Z, name: '[heap]' },
      { vaddr: 0x7fff_f000_0000, data: concat([C, D]), perms: 'rw-p' },
    ],
    [
      { vaddr: 0x7fff_f100_0000n, pages: 4, reason: 'special', perms: 'r--p', name: '[vvar]' },
      { vaddr: 0xffff_ffff_ff60_0000n, pages: 1, reason: 'unreadable', perms: '--xp', name: '[vsyscall]' },
    ],
    4242,
  );
}
const content = [A, B, Z, C, D];

function patched(name: string, patch: (v: DataView, bytes: Uint8Array) => Uint8Array | void): string {
  const bytes = capture();
  return files.write(name, patch(new DataView(bytes.buffer), bytes) ?? bytes);
}

describe('proc images', () => {
  const path = files.write('app.pvproc', capture());

  it('place the regions at consecutive gfns in table order, keeping vaddrs, permissions, names and the skipped ranges', () => {
    const image = openGuestImage(path, 'proc');
    expect(image).toMatchObject({ format: 'proc', pages: 5, dataPages: 5, fileBytes: PAGE_SIZE + 5 * PAGE_SIZE });
    expect(image.regions).toEqual([
      { index: 0, firstGfn: 0, pages: 2, address: '0x555500000000', fileOffset: PAGE_SIZE, fileBytes: 2 * PAGE_SIZE, perms: 'r-xp', name: '/usr/bin/app' },
      { index: 1, firstGfn: 2, pages: 1, address: '0x555500010000', fileOffset: 3 * PAGE_SIZE, fileBytes: PAGE_SIZE, perms: 'rw-p', name: '[heap]' },
      { index: 2, firstGfn: 3, pages: 2, address: '0x7ffff0000000', fileOffset: 4 * PAGE_SIZE, fileBytes: 2 * PAGE_SIZE, perms: 'rw-p', name: '' },
    ]);
    expect(image.skipped).toEqual([
      { address: '0x7ffff1000000', pages: 4, perms: 'r--p', name: '[vvar]', reason: 'special' },
      { address: '0xffffffffff600000', pages: 1, perms: '--xp', name: '[vsyscall]', reason: 'unreadable' },
    ]);
    const got: Uint8Array[] = [];
    image.forEachPage((_, p) => got.push(p.slice()));
    expect(got).toEqual(content);
  });

  it('boots into a guest whose gfn k reads the capture\'s page k', async () => {
    const { hv, dom, guest } = await bootOnHypervisor(imageSpec(path, 'proc'));
    expect(guest.imagePages).toBe(5);
    expect(mismatches(hv, dom, 5, (g) => content[g]!)).toEqual([]);
    expect(hv.audit()).toEqual([]);
  });

  const size = capture().length;
  const cases: [string, (v: DataView, b: Uint8Array) => Uint8Array | void, number, string][] = [
    ['a file shorter than the header', (_, b) => b.subarray(0, 10), 0, "the proc header of 64 bytes ends past the file's 0xa bytes"],
    ['bad magic', (v) => v.setUint8(0, 0x51), 0, 'magic is "QVPROCMM"; expected "PVPROCMM" (a capture by tools/capture-proc.mjs)'],
    ['another version', (v) => v.setUint32(8, 2, true), 8, 'version is 2; expected 1'],
    ['no regions', (v) => v.setUint32(16, 0, true), 0x10, 'the region count is 0; expected at least one region'],
    ['tables past the end of the file', (v) => v.setUint32(16, 1000, true), 0x10, `the tables (1000 regions, 2 skipped ranges of 32 bytes, 34 bytes of names) from 0x40 ends past the file's 0x${size.toString(16)} bytes`],
    ['an unaligned page data offset', (v) => v.setBigUint64(32, 0x1010n, true), 0x20, 'the page data offset is 0x1010; expected a multiple of 0x1000 at or after the tables\' end 0x102'],
    ['a page count that is not the regions\' sum', (v) => v.setBigUint64(40, 6n, true), 0x28, "the page count is 6, but the regions hold 5 pages; expected 5, the sum of the regions' pages"],
    ['an unaligned vaddr', (v) => v.setBigUint64(entry(1), 0x5555_0001_0008n, true), entry(1), 'region 1 vaddr 0x555500010008 is not page aligned; expected a multiple of 0x1000'],
    ['a region of no pages', (v) => v.setUint32(entry(2) + 8, 0, true), entry(2) + 8, 'region 2 has 0 pages; expected at least one page'],
    [
      'regions out of vaddr order',
      (v) => v.setBigUint64(entry(1), 0x5555_0000_1000n, true),
      entry(1),
      'region 1 starts at vaddr 0x555500001000, before region 0 ends at 0x555500002000; expected regions in increasing, disjoint vaddr order',
    ],
    ['a skip reason on a region', (v) => v.setUint32(entry(0) + 12, 0x305, true), entry(0) + 12, 'region 0 has skip reason 3; expected 0: regions in the image are not skipped'],
    ['an unknown skip reason', (v) => v.setUint32(entry(3) + 12, 0x901, true), entry(3) + 12, 'skipped range at entry 3 has skip reason 9; expected a reason from 1 to 4'],
    ['unknown flag bits', (v) => v.setUint32(entry(0) + 12, 0x45, true), entry(0) + 12, 'region 0 flags 0x45 has unknown bits'],
    ['a name past the name table', (v) => v.setUint32(entry(0) + 20, 99, true), entry(0) + 16, "region 0 name at 0 of 99 bytes runs past the name table's 34 bytes"],
    ['a reserved field set', (v) => v.setUint8(entry(4) + 30, 1), entry(4) + 24, 'skipped range at entry 4 reserved field is not zero; expected 0'],
    [
      'a truncated file',
      (_, b) => b.subarray(0, size - PAGE_SIZE - 10),
      size - PAGE_SIZE - 10,
      `the file ends inside page 0 of region 2 (vaddr 0x7ffff0000000, 2 pages); expected 5 pages of data from 0x1000: a file of 0x${size.toString(16)} bytes`,
    ],
    ['bytes after the last page', (_, b) => concat([b, new Uint8Array(7)]), size, `7 bytes follow the last page; expected the file to end after the last page, at 0x${size.toString(16)}`],
  ];
  it.each(cases)('refuses %s, naming the offset and what was expected, before any page is handed out', (name, patch, offset, text) => {
    const bad = patched(`${name.replaceAll(' ', '-').replaceAll("'", '')}.pvproc`, patch);
    const e = refusal(() => openGuestImage(bad, 'proc'));
    expect(e.offset).toBe(offset);
    expect(e.message).toContain(`proc image ${bad}: offset 0x${offset.toString(16)}: ${text}`);
    expect(e.message).toMatch(/; expected .+/);
    expectNothingPopulated(bad, 'proc');
  });
});
