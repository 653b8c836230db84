#!/usr/bin/env node
// Page statistics of guest memory images, per image and across all of them: pages, zero pages,
// distinct page contents (SHA-1 index, every hash hit confirmed by a full byte compare), and the
// frames inline de-duplication would need for all the guests together (the distinct contents,
// the zero page counted once). Streams the images; keeps one copy of each distinct page.
//
//   node stats.mjs DIR|FILE... [--format raw|elf] [--json]
//
// `raw` images (QEMU pmemsave) are read whole, page by page from offset 0. `elf` images (QEMU
// dump-guest-memory) contribute the pages of their PT_LOAD segments. A directory stands for its
// *.raw files (or *.elf with --format elf). When a guest has both a .raw and a .elf beside each
// other, the RAM they share (the ELF segment at physical address 0) is compared page by page.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

const PAGE = 4096;
const ZERO = Buffer.alloc(PAGE);
const CHUNK = 256 * PAGE;

function parseArgs(argv) {
  const opts = { format: 'raw', json: false, paths: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') opts.json = true;
    else if (a === '--format') opts.format = argv[++i];
    else if (a.startsWith('--format=')) opts.format = a.slice('--format='.length);
    else if (a === '-h' || a === '--help') {
      console.log('usage: node stats.mjs DIR|FILE... [--format raw|elf] [--json]');
      process.exit(0);
    } else opts.paths.push(a);
  }
  if (opts.format !== 'raw' && opts.format !== 'elf') fail(`--format must be raw or elf, got ${opts.format}`);
  if (opts.paths.length === 0) fail('give a directory or image files (node stats.mjs DIR)');
  return opts;
}

function fail(msg) {
  console.error(`stats: ${msg}`);
  process.exit(64);
}

const natural = (a, b) => a.localeCompare(b, undefined, { numeric: true });

function listImages(paths, format) {
  const files = [];
  for (const p of paths) {
    if (statSync(p).isDirectory()) {
      const found = readdirSync(p).filter((f) => f.endsWith(`.${format}`)).sort(natural).map((f) => join(p, f));
      if (found.length === 0) fail(`no *.${format} images in ${p}`);
      files.push(...found);
    } else files.push(p);
  }
  return files;
}

/** Returns the image's page runs as { fileOffset, paddr, bytes } (bytes may end in a partial page). */
function segmentsOf(file) {
  const size = statSync(file).size;
  if (!file.endsWith('.elf')) return [{ fileOffset: 0, paddr: 0, bytes: size }];
  const fd = openSync(file, 'r');
  try {
    const read = (pos, len) => {
      const b = Buffer.alloc(len);
      if (readSync(fd, b, 0, len, pos) !== len) fail(`${file}: truncated ELF (reading ${len} bytes at ${pos})`);
      return b;
    };
    const h = read(0, 64);
    if (h.readUInt32BE(0) !== 0x7f454c46) fail(`${file}: not an ELF file`);
    const is64 = h[4] === 2;
    if (h[5] !== 1) fail(`${file}: only little-endian ELF is supported`);
    const num = (b, off, wide) => (wide ? Number(b.readBigUInt64LE(off)) : b.readUInt32LE(off));
    const phoff = num(h, is64 ? 32 : 28, is64);
    const phentsize = h.readUInt16LE(is64 ? 54 : 42);
    let phnum = h.readUInt16LE(is64 ? 56 : 44);
    if (phnum === 0xffff) {
      // PN_XNUM: the real count is in section header 0's sh_info (QEMU writes this for many blocks).
      const shoff = num(h, is64 ? 40 : 32, is64);
      phnum = read(shoff, is64 ? 64 : 40).readUInt32LE(is64 ? 44 : 28);
    }
    const segs = [];
    for (let i = 0; i < phnum; i++) {
      const ph = read(phoff + i * phentsize, phentsize);
      if (ph.readUInt32LE(0) !== 1) continue; // PT_LOAD only
      const fileOffset = num(ph, is64 ? 8 : 4, is64);
      const paddr = num(ph, is64 ? 24 : 12, is64);
      const bytes = num(ph, is64 ? 32 : 16, is64);
      if (fileOffset + bytes > size) fail(`${file}: segment ${i} runs past the end of the file`);
      if (bytes > 0) segs.push({ fileOffset, paddr, bytes });
    }
    return segs;
  } finally {
    closeSync(fd);
  }
}

/** Calls visit(page, paddr) for every page of the runs; the page buffer is reused between calls. */
function forEachPage(file, segs, visit) {
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(CHUNK);
  try {
    for (const s of segs) {
      for (let done = 0; done < s.bytes; ) {
        const want = Math.min(CHUNK, s.bytes - done);
        const got = readSync(fd, buf, 0, want, s.fileOffset + done);
        if (got !== want) fail(`${file}: short read at ${s.fileOffset + done}`);
        // A trailing partial page is padded with zeros, as a hypervisor would map it.
        if (want % PAGE) buf.fill(0, want, want + (PAGE - (want % PAGE)));
        for (let off = 0; off < want; off += PAGE) visit(buf.subarray(off, off + PAGE), s.paddr + done + off);
        done += want;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Content index: one stored copy per distinct non-zero page, found by SHA-1 and confirmed by compare. */
class ContentIndex {
  constructor(capacity) {
    this.byHash = new Map();
    this.pool = [];
    this.count = 0;
    this.collisions = 0;
    this.lastImage = new Int32Array(capacity).fill(-1);
    this.images = new Uint16Array(capacity);
    this.pages = new Uint32Array(capacity);
  }
  page(id) {
    const chunk = this.pool[Math.floor(id / 4096)];
    const at = (id % 4096) * PAGE;
    return chunk.subarray(at, at + PAGE);
  }
  /** Returns the content id of page, adding it if new. */
  intern(page) {
    const key = createHash('sha1').update(page).digest('base64');
    const ids = this.byHash.get(key);
    if (ids !== undefined) {
      for (const id of ids) if (this.page(id).equals(page)) return id;
      this.collisions++;
    }
    const id = this.count++;
    if (id % 4096 === 0) this.pool.push(Buffer.allocUnsafe(4096 * PAGE));
    page.copy(this.page(id));
    if (ids === undefined) this.byHash.set(key, [id]);
    else ids.push(id);
    return id;
  }
}

function compareRawElf(rawFile, elfFile) {
  const ram = segmentsOf(elfFile).find((s) => s.paddr === 0);
  if (!ram) return null;
  const rawSize = statSync(rawFile).size;
  const bytes = Math.min(ram.bytes, rawSize);
  const fd = openSync(rawFile, 'r');
  const other = Buffer.alloc(PAGE);
  let same = 0;
  let differ = 0;
  const differing = [];
  try {
    forEachPage(elfFile, [{ ...ram, bytes }], (page, paddr) => {
      readSync(fd, other, 0, PAGE, paddr);
      if (other.equals(page)) same++;
      else {
        differ++;
        if (differing.length < 8) differing.push(`0x${paddr.toString(16)}`);
      }
    });
  } finally {
    closeSync(fd);
  }
  return { pages: same + differ, same, differ, differing };
}

const opts = parseArgs(process.argv.slice(2));
const files = listImages(opts.paths, opts.format);
const segsByFile = files.map(segmentsOf);
const capacity = segsByFile.reduce((n, segs) => n + segs.reduce((m, s) => m + Math.ceil(s.bytes / PAGE), 0), 0);
const index = new ContentIndex(capacity);
const started = process.hrtime.bigint();

const images = files.map((file, k) => {
  let pages = 0;
  let zero = 0;
  let distinct = 0;
  let firstSeen = 0;
  forEachPage(file, segsByFile[k], (page) => {
    pages++;
    if (page.equals(ZERO)) {
      zero++;
      return;
    }
    const id = index.intern(page);
    index.pages[id]++;
    if (index.lastImage[id] === -1) firstSeen++;
    if (index.lastImage[id] !== k) {
      index.lastImage[id] = k;
      index.images[id]++;
      distinct++;
    }
  });
  const frames = distinct + (zero > 0 ? 1 : 0);
  return { image: basename(file), pages, zeroPages: zero, distinctNonZero: distinct, framesAlone: frames, newContents: firstSeen };
});

let pages = 0;
let zeroPages = 0;
for (const im of images) {
  pages += im.pages;
  zeroPages += im.zeroPages;
}
let sharedContents = 0;
let pagesOnSharedContents = 0;
let dupWithinImagePages = 0;
for (let id = 0; id < index.count; id++) {
  if (index.images[id] >= 2) {
    sharedContents++;
    pagesOnSharedContents += index.pages[id];
  }
  dupWithinImagePages += index.pages[id] - 1;
}
const distinct = index.count + (zeroPages > 0 ? 1 : 0);
const total = {
  images: images.length,
  pages,
  zeroPages,
  distinctContents: distinct,
  distinctNonZero: index.count,
  inlineDedupFrames: distinct,
  savedPercent: pages ? Math.round((1 - distinct / pages) * 10000) / 100 : 0,
  sumOfFramesAlone: images.reduce((n, im) => n + im.framesAlone, 0),
  contentsInTwoOrMoreImages: sharedContents,
  pagesOnThoseContents: pagesOnSharedContents,
  hashCollisions: index.collisions,
};

const checks = [];
if (opts.format === 'raw') {
  for (const file of files) {
    const elf = file.replace(/\.raw$/, '.elf');
    try {
      statSync(elf);
    } catch {
      continue;
    }
    const c = compareRawElf(file, elf);
    if (c) checks.push({ raw: basename(file), elf: basename(elf), ...c });
  }
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;

if (opts.json) {
  console.log(JSON.stringify({ format: opts.format, pageSize: PAGE, images, total, rawVsElf: checks, seconds }, null, 2));
} else {
  const n = (x) => x.toLocaleString('en-US');
  const row = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(14) : String(c).padStart(12))).join(' ');
  console.log(row(['image', 'pages', 'zero', 'distinct≠0', 'frames alone', 'new']));
  for (const im of images) console.log(row([im.image, n(im.pages), n(im.zeroPages), n(im.distinctNonZero), n(im.framesAlone), n(im.newContents)]));
  console.log(row(['all', n(pages), n(zeroPages), n(index.count), n(total.sumOfFramesAlone), '']));
  console.log(
    `inline dedup, all ${images.length} images together: ${n(distinct)} frames for ${n(pages)} pages ` +
      `(distinct contents, the zero page once) = ${total.savedPercent}% saved; ` +
      `each guest alone would need ${n(total.sumOfFramesAlone)}`,
  );
  console.log(
    `${n(sharedContents)} non-zero contents occur in 2+ images, backing ${n(pagesOnSharedContents)} pages; ` +
      `${n(dupWithinImagePages)} non-zero pages repeat an earlier page; hash collisions: ${index.collisions}`,
  );
  for (const c of checks) {
    console.log(
      `${c.raw} vs ${c.elf}: ${n(c.same)} of ${n(c.pages)} RAM pages identical` +
        (c.differ ? ` (${n(c.differ)} differ, e.g. ${c.differing.join(', ')})` : ''),
    );
  }
  console.log(`(${seconds.toFixed(1)} s)`);
}
