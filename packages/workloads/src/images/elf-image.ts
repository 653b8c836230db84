import { PAGE_SIZE } from '@pagevisor/types';
import { hex } from './image-error.js';
import { MAX_IMAGE_PAGES, pagesOf, type ImageFile, type ImageLayout, type ImageRegion } from './image-file.js';

/** Bytes of an Elf64_Ehdr. */
export const ELF64_EHDR_BYTES = 64;
/** Bytes of an Elf64_Phdr. */
export const ELF64_PHDR_BYTES = 56;
/** Bytes of an Elf64_Shdr. */
export const ELF64_SHDR_BYTES = 64;
/** p_type of a loadable segment. */
export const PT_LOAD = 1;
/** p_type of a note segment (QEMU's CPU state). */
export const PT_NOTE = 4;
/** e_type of a core file. */
export const ET_CORE = 4;
/** e_phnum meaning "more than 0xfffe program headers: the count is in section header 0's sh_info". */
export const PN_XNUM = 0xffff;

// Elf64_Ehdr field offsets (System V gABI).
const EI_CLASS = 4;
const EI_DATA = 5;
const EI_VERSION = 6;
const E_TYPE = 16;
const E_PHOFF = 32;
const E_SHOFF = 40;
const E_PHENTSIZE = 54;
const E_PHNUM = 56;
const E_SHENTSIZE = 58;
// Elf64_Phdr field offsets.
const P_TYPE = 0;
const P_OFFSET = 8;
const P_PADDR = 24;
const P_FILESZ = 32;
const P_MEMSZ = 40;
// Elf64_Shdr: sh_info.
const SH_INFO = 44;

const TYPE_NAMES: Readonly<Record<number, string>> = { 0: 'ET_NONE', 1: 'ET_REL', 2: 'ET_EXEC', 3: 'ET_DYN', 4: 'ET_CORE' };
const MAX_SPAN_BYTES = BigInt(MAX_IMAGE_PAGES) * BigInt(PAGE_SIZE);
/** Program headers read at once while validating. */
const PHDRS_PER_READ = 1024;

function ptName(type: number): string {
  return type === PT_LOAD ? 'PT_LOAD' : type === PT_NOTE ? 'PT_NOTE' : `type ${type}`;
}

/**
 * Validates a QEMU `dump-guest-memory` ELF core (ELF64, little-endian, ET_CORE): a PT_NOTE and
 * PT_LOAD segments, each placing `p_filesz` bytes from file offset `p_offset` at guest-physical
 * `p_paddr` (page aligned), its pages up to `p_memsz` reading zeros. With more than 0xfffe
 * program headers e_phnum is PN_XNUM and section header 0's sh_info holds the count, as QEMU
 * writes it. Every header and segment is checked before anything is returned.
 * @throws ImageError naming the offset and what was expected: bad magic, class, byte order or
 *   type; a program header table or segment past the end of the file; an unaligned p_paddr;
 *   p_filesz > p_memsz; overlapping PT_LOADs; no PT_LOAD at all.
 */
export function parseElfImage(file: ImageFile): ImageLayout {
  file.mustFit(0, ELF64_EHDR_BYTES, `the ELF header of ${ELF64_EHDR_BYTES} bytes`);
  const eh = new DataView(file.read(0, ELF64_EHDR_BYTES, 'the ELF header').buffer);
  const magic = [0, 1, 2, 3].map((i) => eh.getUint8(i));
  if (magic[0] !== 0x7f || magic[1] !== 0x45 || magic[2] !== 0x4c || magic[3] !== 0x46) {
    file.fail(0, `magic is ${magic.map((b) => b.toString(16).padStart(2, '0')).join(' ')}`, '7f 45 4c 46 ("\\x7fELF")');
  }
  const cls = eh.getUint8(EI_CLASS);
  if (cls !== 2) file.fail(EI_CLASS, `EI_CLASS is ${cls}${cls === 1 ? ' (ELFCLASS32)' : ''}`, '2 (ELFCLASS64)');
  const data = eh.getUint8(EI_DATA);
  if (data !== 1) file.fail(EI_DATA, `EI_DATA is ${data}${data === 2 ? ' (ELFDATA2MSB, big-endian)' : ''}`, '1 (ELFDATA2LSB, little-endian)');
  const version = eh.getUint8(EI_VERSION);
  if (version !== 1) file.fail(EI_VERSION, `EI_VERSION is ${version}`, '1 (EV_CURRENT)');
  const type = eh.getUint16(E_TYPE, true);
  if (type !== ET_CORE) file.fail(E_TYPE, `e_type is ${type}${TYPE_NAMES[type] === undefined ? '' : ` (${TYPE_NAMES[type]})`}`, `${ET_CORE} (ET_CORE, a core dump)`);
  const phentsize = eh.getUint16(E_PHENTSIZE, true);
  if (phentsize !== ELF64_PHDR_BYTES) file.fail(E_PHENTSIZE, `e_phentsize is ${phentsize}`, `${ELF64_PHDR_BYTES} (sizeof Elf64_Phdr)`);
  const phoff = u64(file, eh, E_PHOFF, 'e_phoff');
  if (phoff < ELF64_EHDR_BYTES) file.fail(E_PHOFF, `e_phoff ${hex(phoff)} points into the ELF header`, `an offset of at least ${hex(ELF64_EHDR_BYTES)}`);
  let phnum = eh.getUint16(E_PHNUM, true);
  if (phnum === PN_XNUM) phnum = extendedPhnum(file, eh);
  if (phnum === 0) file.fail(E_PHNUM, 'e_phnum is 0 (no program headers)', 'a PT_NOTE and PT_LOAD program headers');
  file.mustFit(phoff, phnum * ELF64_PHDR_BYTES, `the program header table at e_phoff ${hex(phoff)} of ${phnum} entries of ${ELF64_PHDR_BYTES} bytes`, E_PHOFF);

  const regions: ImageRegion[] = [];
  for (let first = 0; first < phnum; first += PHDRS_PER_READ) {
    const n = Math.min(PHDRS_PER_READ, phnum - first);
    const at = phoff + first * ELF64_PHDR_BYTES;
    const table = new DataView(file.read(at, n * ELF64_PHDR_BYTES, 'the program header table').buffer);
    for (let k = 0; k < n; k++) {
      const region = checkPhdr(file, table, k * ELF64_PHDR_BYTES, first + k, at + k * ELF64_PHDR_BYTES);
      if (region !== null) regions.push(region);
    }
  }
  if (regions.length === 0) file.fail(E_PHNUM, `none of the ${phnum} program headers is a PT_LOAD with p_memsz > 0`, 'at least one PT_LOAD segment');
  return { pages: checkDisjoint(file, phoff, regions), regions, skipped: [] };
}

/** A u64 field of the ELF header that must be a file offset (below 2^53). */
function u64(file: ImageFile, view: DataView, at: number, field: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) file.fail(at, `${field} is ${hex(v)}`, `an offset inside the file's ${hex(file.size)} bytes`);
  return Number(v);
}

/** The program header count of a file with e_phnum == PN_XNUM: sh_info of section header 0. */
function extendedPhnum(file: ImageFile, eh: DataView): number {
  const shoff = u64(file, eh, E_SHOFF, 'e_shoff');
  if (shoff === 0) file.fail(E_SHOFF, 'e_phnum is PN_XNUM (0xffff) but e_shoff is 0', 'section header 0, whose sh_info holds the program header count');
  const shentsize = eh.getUint16(E_SHENTSIZE, true);
  if (shentsize !== ELF64_SHDR_BYTES) file.fail(E_SHENTSIZE, `e_shentsize is ${shentsize}`, `${ELF64_SHDR_BYTES} (sizeof Elf64_Shdr), since e_phnum is PN_XNUM`);
  file.mustFit(shoff, ELF64_SHDR_BYTES, `section header 0 at e_shoff ${hex(shoff)}`, E_SHOFF);
  const sh = new DataView(file.read(shoff, ELF64_SHDR_BYTES, 'section header 0').buffer);
  const n = sh.getUint32(SH_INFO, true);
  if (n < PN_XNUM) file.fail(shoff + SH_INFO, `section header 0's sh_info is ${n}`, `a program header count of at least ${PN_XNUM} (e_phnum is PN_XNUM)`);
  return n;
}

/** Checks program header `i` (at file offset `at`); returns its region if it is a PT_LOAD with memory. */
function checkPhdr(file: ImageFile, table: DataView, o: number, i: number, at: number): ImageRegion | null {
  const type = table.getUint32(o + P_TYPE, true);
  if (type !== PT_LOAD && type !== PT_NOTE) return null;
  const what = `program header ${i} (${ptName(type)})`;
  const offset = table.getBigUint64(o + P_OFFSET, true);
  const filesz = table.getBigUint64(o + P_FILESZ, true);
  const memsz = table.getBigUint64(o + P_MEMSZ, true);
  const size = BigInt(file.size);
  // QEMU writes p_offset -1 with p_filesz 0 for memory it left out: no bytes, no offset to check.
  if (filesz > 0n && offset + filesz > size) {
    file.fail(at, `${what} p_offset ${hex(offset)} + p_filesz ${hex(filesz)} ends past the file's ${hex(size)} bytes`, `p_offset + p_filesz <= ${hex(size)}`);
  }
  if (type === PT_NOTE || memsz === 0n) return null;
  if (filesz > memsz) file.fail(at, `${what} p_filesz ${hex(filesz)} is larger than p_memsz ${hex(memsz)}`, 'p_filesz <= p_memsz');
  const paddr = table.getBigUint64(o + P_PADDR, true);
  if (paddr % BigInt(PAGE_SIZE) !== 0n) file.fail(at, `${what} p_paddr ${hex(paddr)} is not page aligned`, `a multiple of ${hex(PAGE_SIZE)}`);
  if (paddr + memsz > MAX_SPAN_BYTES) {
    file.fail(at, `${what} p_paddr ${hex(paddr)} + p_memsz ${hex(memsz)} ends past the largest guest-physical span`, `an end at or before ${hex(MAX_SPAN_BYTES)} (${MAX_IMAGE_PAGES} pages)`);
  }
  return {
    index: i,
    firstGfn: Number(paddr) / PAGE_SIZE,
    pages: pagesOf(Number(memsz)),
    address: hex(paddr),
    fileOffset: filesz === 0n ? 0 : Number(offset),
    fileBytes: Number(filesz),
  };
}

/**
 * Sorts `regions` by gfn and refuses overlapping ones (naming the later program header's
 * offset); returns the gfn span. Addresses are page aligned, so byte overlap is page overlap.
 */
function checkDisjoint(file: ImageFile, phoff: number, regions: ImageRegion[]): number {
  regions.sort((a, b) => a.firstGfn - b.firstGfn || a.index - b.index);
  let span = 0;
  for (let k = 0; k < regions.length; k++) {
    const r = regions[k]!;
    if (k > 0) {
      const p = regions[k - 1]!;
      if (p.firstGfn + p.pages > r.firstGfn) {
        const [a, b] = p.index < r.index ? [p, r] : [r, p];
        const range = (x: ImageRegion) => `[${x.address}, ${hex((x.firstGfn + x.pages) * PAGE_SIZE)})`;
        file.fail(
          phoff + b.index * ELF64_PHDR_BYTES,
          `program header ${b.index} (PT_LOAD) covers guest-physical ${range(b)}, which overlaps program header ${a.index}'s ${range(a)}`,
          'PT_LOAD segments at disjoint guest-physical ranges (a dump without paging, -p, has them)',
        );
      }
    }
    span = Math.max(span, r.firstGfn + r.pages);
  }
  return span;
}
