import { TextDecoder } from 'node:util';
import { PAGE_SIZE } from '@pagevisor/types';
import { hex } from './image-error.js';
import { MAX_IMAGE_PAGES, type ImageFile, type ImageLayout, type ImageRegion, type SkippedRange, type SkipReason } from './image-file.js';

/**
 * The proc image format (version 1), written by tools/capture-proc.mjs: a Linux process's
 * memory, its readable regions one after the other. All integers little-endian.
 *
 * ```
 * offset  bytes  field
 * 0       8      magic, ASCII "PVPROCMM"
 * 8       4      version: 1
 * 12      4      header bytes: 64
 * 16      4      R: regions in the image (>= 1)
 * 20      4      S: skipped ranges
 * 24      4      N: bytes of the name table
 * 28      4      pid of the captured process (informational)
 * 32      8      D: file offset of the page data, a multiple of 4096, >= 64 + 32 * (R + S) + N
 * 40      8      P: pages of data, the sum of the regions' pages (<= 2^30)
 * 48      16     reserved, zero
 * 64      32*R   region table, in increasing, disjoint vaddr order (as /proc/PID/maps lists them)
 *         32*S   skipped table: ranges left out, and why
 *         N      name table: the mappings' names in UTF-8, not terminated
 *                zero padding up to D
 * D       4096*P the regions' pages, region by region; the file ends at D + 4096 * P
 *
 * table entry (32 bytes)
 * 0       8      vaddr, page aligned
 * 8       4      pages (>= 1)
 * 12      4      flags: bit 0 readable, 1 writable, 2 executable, 3 shared (else private),
 *                4 anonymous (no file behind it); bits 8-15 the skip reason: 0 in the region
 *                table; in the skipped table 1 special ([vvar], [vsyscall], [vvar_vclock]),
 *                2 unreadable (no read permission), 3 read failed (/proc/PID/mem refused it),
 *                4 shared-file (a shared mapping of a file or device)
 * 16      4      name offset in the name table
 * 20      4      name length (0: no name)
 * 24      8      reserved, zero
 * ```
 *
 * The importer places region k's pages at consecutive gfns after region k-1's, from gfn 0.
 */
export const PROC_IMAGE_MAGIC = 'PVPROCMM';
/** Version of the proc format this package reads and writes. */
export const PROC_IMAGE_VERSION = 1;
/** Bytes of the proc image header. */
export const PROC_HEADER_BYTES = 64;
/** Bytes of a region or skipped-range table entry. */
export const PROC_ENTRY_BYTES = 32;

/** Flag bits of a proc table entry. */
export const ProcFlags = { read: 1, write: 2, exec: 4, shared: 8, anonymous: 16 } as const;
/** Skip reasons, in bits 8-15 of a skipped entry's flags, by code. */
export const PROC_SKIP_REASONS: readonly (SkipReason | null)[] = [null, 'special', 'unreadable', 'read-failed', 'shared-file'];

const KNOWN_FLAGS = 0x1f | 0xff00;

/** `rw-p`-style permissions of entry flags. */
export function procPerms(flags: number): string {
  return (
    (flags & ProcFlags.read ? 'r' : '-') +
    (flags & ProcFlags.write ? 'w' : '-') +
    (flags & ProcFlags.exec ? 'x' : '-') +
    (flags & ProcFlags.shared ? 's' : 'p')
  );
}

interface Entry {
  readonly vaddr: bigint;
  readonly pages: number;
  readonly flags: number;
  readonly name: string;
}

/**
 * Validates a proc image (see {@link PROC_IMAGE_MAGIC} for the format): header, both tables,
 * names, the vaddr order of the regions and the exact file size, before anything is returned.
 * @throws ImageError naming the offset and what was expected.
 */
export function parseProcImage(file: ImageFile): ImageLayout {
  file.mustFit(0, PROC_HEADER_BYTES, `the proc header of ${PROC_HEADER_BYTES} bytes`);
  const h = new DataView(file.read(0, PROC_HEADER_BYTES, 'the proc header').buffer);
  const magic = String.fromCharCode(...Array.from({ length: 8 }, (_, i) => h.getUint8(i)));
  if (magic !== PROC_IMAGE_MAGIC) file.fail(0, `magic is ${JSON.stringify(magic)}`, `${JSON.stringify(PROC_IMAGE_MAGIC)} (a capture by tools/capture-proc.mjs)`);
  const version = h.getUint32(8, true);
  if (version !== PROC_IMAGE_VERSION) file.fail(8, `version is ${version}`, `${PROC_IMAGE_VERSION}`);
  const headerBytes = h.getUint32(12, true);
  if (headerBytes !== PROC_HEADER_BYTES) file.fail(12, `header bytes is ${headerBytes}`, `${PROC_HEADER_BYTES}`);
  const r = h.getUint32(16, true);
  if (r === 0) file.fail(16, 'the region count is 0', 'at least one region');
  const s = h.getUint32(20, true);
  const n = h.getUint32(24, true);
  const tablesBytes = PROC_ENTRY_BYTES * (r + s) + n;
  file.mustFit(PROC_HEADER_BYTES, tablesBytes, `the tables (${r} regions, ${s} skipped ranges of ${PROC_ENTRY_BYTES} bytes, ${n} bytes of names) from ${hex(PROC_HEADER_BYTES)}`, 16);
  const tablesEnd = PROC_HEADER_BYTES + tablesBytes;
  const d = u53(file, h, 32, 'the page data offset');
  if (d % PAGE_SIZE !== 0 || d < tablesEnd) {
    file.fail(32, `the page data offset is ${hex(d)}`, `a multiple of ${hex(PAGE_SIZE)} at or after the tables' end ${hex(tablesEnd)}`);
  }
  const p = u53(file, h, 40, 'the page count');
  if (p > MAX_IMAGE_PAGES) file.fail(40, `the page count is ${p}`, `at most ${MAX_IMAGE_PAGES} pages`);
  for (let o = 48; o < PROC_HEADER_BYTES; o += 4) if (h.getUint32(o, true) !== 0) file.fail(o, 'a reserved header field is not zero', '0');

  const t = new DataView(file.read(PROC_HEADER_BYTES, tablesBytes, 'the tables').buffer);
  const names = new Uint8Array(t.buffer, PROC_ENTRY_BYTES * (r + s), n);
  const decoder = new TextDecoder();
  const regions: ImageRegion[] = [];
  let gfn = 0;
  let prevEnd = -1n;
  for (let i = 0; i < r; i++) {
    const e = readEntry(file, t, names, decoder, i, false);
    const at = PROC_HEADER_BYTES + i * PROC_ENTRY_BYTES;
    if (e.vaddr < prevEnd) {
      file.fail(at, `region ${i} starts at vaddr ${hex(e.vaddr)}, before region ${i - 1} ends at ${hex(prevEnd)}`, 'regions in increasing, disjoint vaddr order');
    }
    prevEnd = e.vaddr + BigInt(e.pages * PAGE_SIZE);
    if (gfn + e.pages > MAX_IMAGE_PAGES) file.fail(at + 8, `regions 0..${i} hold more than ${MAX_IMAGE_PAGES} pages`, `at most ${MAX_IMAGE_PAGES} pages`);
    regions.push({
      index: i,
      firstGfn: gfn,
      pages: e.pages,
      address: hex(e.vaddr),
      fileOffset: d + gfn * PAGE_SIZE,
      fileBytes: e.pages * PAGE_SIZE,
      perms: procPerms(e.flags),
      name: e.name,
    });
    gfn += e.pages;
  }
  if (gfn !== p) file.fail(40, `the page count is ${p}, but the regions hold ${gfn} pages`, `${gfn}, the sum of the regions' pages`);
  const skipped: SkippedRange[] = [];
  for (let i = 0; i < s; i++) {
    const e = readEntry(file, t, names, decoder, r + i, true);
    skipped.push({ address: hex(e.vaddr), pages: e.pages, perms: procPerms(e.flags), name: e.name, reason: PROC_SKIP_REASONS[e.flags >>> 8]! });
  }
  const end = d + p * PAGE_SIZE;
  if (file.size < end) {
    const k = regions.findIndex((x) => x.fileOffset + x.fileBytes > file.size);
    const x = regions[k]!;
    const page = Math.max(0, Math.floor((file.size - x.fileOffset) / PAGE_SIZE));
    file.fail(file.size, `the file ends inside page ${page} of region ${k} (vaddr ${x.address}, ${x.pages} pages)`, `${p} pages of data from ${hex(d)}: a file of ${hex(end)} bytes`);
  }
  if (file.size > end) file.fail(end, `${file.size - end} bytes follow the last page`, `the file to end after the last page, at ${hex(end)}`);
  return { pages: p, regions, skipped };
}

function u53(file: ImageFile, view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) file.fail(at, `${what} is ${hex(v)}`, 'a value below 2^53');
  return Number(v);
}

/** Table entry `k` (0-based over the region table, then the skipped table). */
function readEntry(file: ImageFile, t: DataView, names: Uint8Array, decoder: TextDecoder, k: number, skippedTable: boolean): Entry {
  const o = k * PROC_ENTRY_BYTES;
  const at = PROC_HEADER_BYTES + o;
  const label = skippedTable ? `skipped range at entry ${k}` : `region ${k}`;
  const vaddr = t.getBigUint64(o, true);
  if (vaddr % BigInt(PAGE_SIZE) !== 0n) file.fail(at, `${label} vaddr ${hex(vaddr)} is not page aligned`, `a multiple of ${hex(PAGE_SIZE)}`);
  const pages = t.getUint32(o + 8, true);
  if (pages === 0) file.fail(at + 8, `${label} has 0 pages`, 'at least one page');
  if (vaddr + BigInt(pages * PAGE_SIZE) > 1n << 64n) file.fail(at, `${label} at ${hex(vaddr)} of ${pages} pages runs past the 64-bit address space`, 'an end at or before 2^64');
  const flags = t.getUint32(o + 12, true);
  if ((flags & ~KNOWN_FLAGS) !== 0) file.fail(at + 12, `${label} flags ${hex(flags)} has unknown bits`, 'bits 0-4 and a skip reason in bits 8-15 only');
  const reason = flags >>> 8;
  if (!skippedTable && reason !== 0) file.fail(at + 12, `${label} has skip reason ${reason}`, '0: regions in the image are not skipped');
  if (skippedTable && (reason === 0 || reason >= PROC_SKIP_REASONS.length)) {
    file.fail(at + 12, `${label} has skip reason ${reason}`, `a reason from 1 to ${PROC_SKIP_REASONS.length - 1}`);
  }
  const nameOff = t.getUint32(o + 16, true);
  const nameLen = t.getUint32(o + 20, true);
  if (nameOff + nameLen > names.length) {
    file.fail(at + 16, `${label} name at ${nameOff} of ${nameLen} bytes runs past the name table's ${names.length} bytes`, `a name inside the name table`);
  }
  if (t.getBigUint64(o + 24, true) !== 0n) file.fail(at + 24, `${label} reserved field is not zero`, '0');
  return { vaddr, pages, flags, name: decoder.decode(names.subarray(nameOff, nameOff + nameLen)) };
}
