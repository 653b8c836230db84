import { PAGE_SIZE } from '@pagevisor/types';
import { afterAll, describe, expect, it } from 'vitest';
import { bootOnHypervisor, concat, expectNothingPopulated, imageSpec, mismatches, page, refusal, tempImages } from '../../tests/guest-images.js';
import { buildElfCore } from './build-image.js';
import { ELF64_EHDR_BYTES, ELF64_PHDR_BYTES, ELF64_SHDR_BYTES, PN_XNUM, PT_LOAD } from './elf-image.js';
import { openGuestImage } from './guest-image.js';

const files = tempImages();
afterAll(() => files.remove());

const [A, B, C, D, F] = [page(10), page(11), page(12), page(13), page(15)];
const E = page(14).subarray(0, 100);
/** Program header k's file offset (0 is the PT_NOTE). */
const ph = (k: number): number => ELF64_EHDR_BYTES + k * ELF64_PHDR_BYTES;

/**
 * A core as QEMU writes one, segments out of paddr order and at unaligned file offsets:
 * phdr 1 at gfn 8 (2 pages of data, 4 of memory), phdr 2 at gfn 0 (2 pages and 100 bytes),
 * phdr 3 at gfn 13 (1 page), phdr 4 at gfn 12 (memory left out of the dump: p_offset -1, no bytes).
 */
function core(): Uint8Array {
  const bytes = buildElfCore([
    { paddr: 0x8000, data: concat([A, B]), memsz: 4 * PAGE_SIZE },
    { paddr: 0, data: concat([C, D, E]) },
    { paddr: 0xd000, data: F },
    { paddr: 0xc000, data: new Uint8Array(0), memsz: PAGE_SIZE },
  ]);
  new DataView(bytes.buffer).setBigUint64(ph(4) + 8, 0xffff_ffff_ffff_ffffn, true);
  return bytes;
}

function expected(gfn: number): Uint8Array | null {
  const partial = new Uint8Array(PAGE_SIZE);
  partial.set(E);
  return ({ 0: C, 1: D, 2: partial, 8: A, 9: B, 13: F } as Record<number, Uint8Array>)[gfn] ?? null;
}

/** `core()` with `patch` applied, written to a file. */
function patched(name: string, patch: (v: DataView, bytes: Uint8Array) => Uint8Array | void): string {
  const bytes = core();
  const out = patch(new DataView(bytes.buffer), bytes) ?? bytes;
  return files.write(name, out);
}

describe('ELF core images', () => {
  const path = files.write('core.elf', core());

  it('place each PT_LOAD at its p_paddr, in gfn order; p_memsz beyond p_filesz and gaps read zeros', () => {
    const image = openGuestImage(path, 'elf');
    expect(image).toMatchObject({ format: 'elf', pages: 14, dataPages: 6, skipped: [] });
    const noteEnd = ph(5) + 20;
    expect(image.regions).toEqual([
      { index: 2, firstGfn: 0, pages: 3, address: '0x0', fileOffset: noteEnd + 2 * PAGE_SIZE, fileBytes: 2 * PAGE_SIZE + 100 },
      { index: 1, firstGfn: 8, pages: 4, address: '0x8000', fileOffset: noteEnd, fileBytes: 2 * PAGE_SIZE },
      { index: 4, firstGfn: 12, pages: 1, address: '0xc000', fileOffset: 0, fileBytes: 0 },
      { index: 3, firstGfn: 13, pages: 1, address: '0xd000', fileOffset: noteEnd + 4 * PAGE_SIZE + 100, fileBytes: PAGE_SIZE },
    ]);
    const seen: number[] = [];
    image.forEachPage((gfn, p) => {
      seen.push(gfn);
      expect(p).toEqual(expected(gfn));
    });
    expect(seen).toEqual([0, 1, 2, 8, 9, 13]);
  });

  it('boots into a guest that reads, at each guest-physical address, the bytes the core holds there', async () => {
    const { hv, dom, guest } = await bootOnHypervisor(imageSpec(path, 'elf'));
    expect(guest.state).toBe('done');
    expect(guest.imagePages).toBe(14);
    expect(mismatches(hv, dom, 14, expected)).toEqual([]);
    expect(hv.audit()).toEqual([]);
  });

  it('reads a core with more than 0xfffe program headers (e_phnum PN_XNUM, the count in sh_info)', () => {
    const n = PN_XNUM + 6;
    const shoff = ELF64_EHDR_BYTES + n * ELF64_PHDR_BYTES;
    const dataAt = shoff + ELF64_SHDR_BYTES;
    const bytes = new Uint8Array(dataAt + 2 * PAGE_SIZE);
    const v = new DataView(bytes.buffer);
    bytes.set(core().subarray(0, ELF64_EHDR_BYTES));
    v.setUint16(56, PN_XNUM, true);
    v.setBigUint64(40, BigInt(shoff), true);
    v.setUint16(58, ELF64_SHDR_BYTES, true);
    v.setUint16(60, 1, true);
    v.setUint32(shoff + 44, n, true);
    // PT_LOADs first and last, PT_NULLs between.
    for (const [k, paddr, at] of [[0, 0x1000, dataAt], [n - 1, 0, dataAt + PAGE_SIZE]] as const) {
      v.setUint32(ph(k), PT_LOAD, true);
      v.setBigUint64(ph(k) + 8, BigInt(at), true);
      v.setBigUint64(ph(k) + 24, BigInt(paddr), true);
      v.setBigUint64(ph(k) + 32, BigInt(PAGE_SIZE), true);
      v.setBigUint64(ph(k) + 40, BigInt(PAGE_SIZE), true);
    }
    bytes.set(A, dataAt);
    bytes.set(B, dataAt + PAGE_SIZE);
    const image = openGuestImage(files.write('xnum.elf', bytes), 'elf');
    expect(image.regions.map((r) => [r.index, r.firstGfn])).toEqual([[n - 1, 0], [0, 1]]);
    const got: Uint8Array[] = [];
    image.forEachPage((_, p) => got.push(p.slice()));
    expect(got).toEqual([B, A]);
  });

  const size = core().length;
  const cases: [string, (v: DataView, b: Uint8Array) => Uint8Array | void, number, string][] = [
    ['a file shorter than the ELF header', (_, b) => b.subarray(0, 40), 0, "the ELF header of 64 bytes ends past the file's 0x28 bytes; expected an end at or before 0x28"],
    ['bad magic', (v) => v.setUint8(3, 0x47), 0, 'magic is 7f 45 4c 47; expected 7f 45 4c 46 ("\\x7fELF")'],
    ['a 32-bit class', (v) => v.setUint8(4, 1), 4, 'EI_CLASS is 1 (ELFCLASS32); expected 2 (ELFCLASS64)'],
    ['big-endian data', (v) => v.setUint8(5, 2), 5, 'EI_DATA is 2 (ELFDATA2MSB, big-endian); expected 1 (ELFDATA2LSB, little-endian)'],
    ['an executable, not a core', (v) => v.setUint16(16, 2, true), 0x10, 'e_type is 2 (ET_EXEC); expected 4 (ET_CORE, a core dump)'],
    ['a wrong program header size', (v) => v.setUint16(54, 32, true), 0x36, 'e_phentsize is 32; expected 56 (sizeof Elf64_Phdr)'],
    [
      'a program header table past the end of the file',
      (v) => v.setUint16(56, 4000, true),
      0x20,
      `the program header table at e_phoff 0x40 of 4000 entries of 56 bytes ends past the file's 0x${size.toString(16)} bytes`,
    ],
    [
      'a truncated file (the last segment runs past its end)',
      (_, b) => b.subarray(0, size - 100),
      ph(3),
      `program header 3 (PT_LOAD) p_offset 0x${(size - PAGE_SIZE).toString(16)} + p_filesz 0x1000 ends past the file's 0x${(size - 100).toString(16)} bytes; expected p_offset + p_filesz <= 0x${(size - 100).toString(16)}`,
    ],
    ['a PT_NOTE past the end of the file', (v) => v.setBigUint64(ph(0) + 32, 1n << 40n, true), ph(0), 'program header 0 (PT_NOTE) p_offset 0x158 + p_filesz 0x10000000000 ends past'],
    ['an unaligned p_paddr', (v) => v.setBigUint64(ph(3) + 24, 0xd010n, true), ph(3), 'program header 3 (PT_LOAD) p_paddr 0xd010 is not page aligned; expected a multiple of 0x1000'],
    ['p_filesz > p_memsz', (v) => v.setBigUint64(ph(2) + 40, 0x1000n, true), ph(2), 'program header 2 (PT_LOAD) p_filesz 0x2064 is larger than p_memsz 0x1000; expected p_filesz <= p_memsz'],
    [
      'overlapping segments',
      (v) => v.setBigUint64(ph(3) + 24, 0xa000n, true),
      ph(3),
      "program header 3 (PT_LOAD) covers guest-physical [0xa000, 0xb000), which overlaps program header 1's [0x8000, 0xc000); expected PT_LOAD segments at disjoint guest-physical ranges",
    ],
    [
      'a segment past the largest guest-physical span',
      (v) => v.setBigUint64(ph(3) + 24, 1n << 42n, true),
      ph(3),
      'program header 3 (PT_LOAD) p_paddr 0x40000000000 + p_memsz 0x1000 ends past the largest guest-physical span',
    ],
    [
      'no PT_LOAD',
      (v) => {
        for (const k of [1, 2, 3, 4]) v.setUint32(ph(k), 0, true);
      },
      0x38,
      'none of the 5 program headers is a PT_LOAD with p_memsz > 0; expected at least one PT_LOAD segment',
    ],
  ];
  it.each(cases)('refuses %s, naming the offset and what was expected, before any page is handed out', (name, patch, offset, text) => {
    const bad = patched(`${name.replaceAll(' ', '-')}.elf`, patch);
    const e = refusal(() => openGuestImage(bad, 'elf'));
    expect(e.offset).toBe(offset);
    expect(e.message).toContain(`elf image ${bad}: offset 0x${offset.toString(16)}: ${text}`);
    expect(e.message).toMatch(/; expected .+/);
    expectNothingPopulated(bad, 'elf');
  });
});
