#!/usr/bin/env node
// Captures the memory of a running Linux process into a proc image, which pagevisor scenarios
// boot with `image: { path, format: "proc" }`. Reads /proc/PID/maps and /proc/PID/mem (needs
// ptrace access to the process: root, or the same user with ptrace_scope 0). Captures each
// readable region that is private or anonymous; skips [vvar], [vsyscall] and [vvar_vclock],
// regions without read permission, shared mappings of files or devices, and any page that
// /proc/PID/mem refuses to read, recording each skipped range and why in the image.
// A running process keeps changing while it is read: --stop sends it SIGSTOP first and
// SIGCONT at the end. Stand-alone (no build needed); the format is documented in
// packages/workloads/src/images/proc-image.ts and packages/workloads/README.md.
//
//   node tools/capture-proc.mjs --pid PID --out FILE [--stop] [--quiet]
//
// Exit code 0 when the image was written, 1 when the capture failed, 2 on a usage error.
import { closeSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';

const PAGE = 4096;
const CHUNK = 1 << 20;
const MAGIC = 'PVPROCMM';
const VERSION = 1;
const HEADER_BYTES = 64;
const ENTRY_BYTES = 32;
const FLAG = { read: 1, write: 2, exec: 4, shared: 8, anonymous: 16 };
const REASON = { special: 1, unreadable: 2, 'read-failed': 3, 'shared-file': 4 };
const SPECIAL = new Set(['[vvar]', '[vsyscall]', '[vvar_vclock]']);

function usage(message) {
  if (message !== undefined) process.stderr.write(`capture-proc: ${message}\n`);
  process.stderr.write('usage: node tools/capture-proc.mjs --pid PID --out FILE [--stop] [--quiet]\n');
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      pid: { type: 'string' },
      out: { type: 'string' },
      stop: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (e) {
  usage(e.message);
}
if (args.help) {
  process.stdout.write(`usage: node tools/capture-proc.mjs --pid PID --out FILE [--stop] [--quiet]
  --pid PID   the process to capture
  --out FILE  the proc image to write (written to FILE.tmp, then renamed)
  --stop      SIGSTOP the process while it is read, SIGCONT it afterwards
  --quiet     print nothing but errors
`);
  process.exit(0);
}
if (args.pid === undefined || !/^[1-9][0-9]*$/.test(args.pid)) usage(`--pid: must be a positive integer, got ${JSON.stringify(args.pid ?? '')}`);
if (args.out === undefined || args.out === '') usage('--out: needs a file name');
const pid = Number(args.pid);

/** /proc/PID/maps as [{ start, end (bigint), perms, name }]. */
function readMaps() {
  const text = readFileSync(`/proc/${pid}/maps`, 'utf8');
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S{4})\s+\S+\s+\S+\s+\S+\s*(.*)$/.exec(line);
    if (m === null) throw new Error(`cannot parse /proc/${pid}/maps line: ${line}`);
    out.push({ start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), perms: m[3], name: m[4].trim() });
  }
  return out;
}

/** True for a name of memory with no file behind it. */
function anonymousName(name) {
  return name === '' || name.startsWith('[') || name.startsWith('/dev/zero') || name.startsWith('/memfd:') || name.startsWith('/SYSV');
}

function flagsOf(perms, name) {
  return (
    (perms[0] === 'r' ? FLAG.read : 0) |
    (perms[1] === 'w' ? FLAG.write : 0) |
    (perms[2] === 'x' ? FLAG.exec : 0) |
    (perms[3] === 's' ? FLAG.shared : 0) |
    (anonymousName(name) ? FLAG.anonymous : 0)
  );
}

/** Why a mapping is left out, or null to capture it. */
function skipReason(m) {
  if (SPECIAL.has(m.name)) return 'special';
  if (m.perms[0] !== 'r') return 'unreadable';
  if (m.perms[3] === 's' && !anonymousName(m.name)) return 'shared-file';
  return null;
}

/**
 * Reads every captured mapping from /proc/PID/mem into the file `dataFd`, a chunk at a time.
 * Returns the regions and skipped ranges ({ vaddr, pages, flags, name }).
 */
function capture(maps, dataFd) {
  const regions = [];
  const skipped = [];
  const buf = Buffer.alloc(CHUNK);
  const mem = openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const m of maps) {
      const flags = flagsOf(m.perms, m.name);
      const reason = skipReason(m);
      if (reason !== null) {
        skipped.push({ vaddr: m.start, pages: Number((m.end - m.start) / BigInt(PAGE)), flags: flags | (REASON[reason] << 8), name: m.name });
        continue;
      }
      // A run of pages read (kind 0) or refused (kind 1); a switch of kind closes the run.
      let run = null;
      const close = () => {
        if (run === null) return;
        if (run.kind === 0) regions.push({ vaddr: run.vaddr, pages: run.pages, flags, name: m.name });
        else skipped.push({ vaddr: run.vaddr, pages: run.pages, flags: flags | (REASON['read-failed'] << 8), name: m.name });
        run = null;
      };
      const extend = (kind, vaddr, pages) => {
        if (run !== null && (run.kind !== kind || run.pages + pages > 0xffff_ffff)) close();
        if (run === null) run = { kind, vaddr, pages: 0 };
        run.pages += pages;
      };
      for (let pos = m.start; pos < m.end; ) {
        const len = Number(m.end - pos < BigInt(CHUNK) ? m.end - pos : BigInt(CHUNK));
        let n = 0;
        try {
          n = readSync(mem, buf, 0, len, pos);
        } catch {
          n = 0; // EIO/EFAULT: the page at pos cannot be read
        }
        const whole = n - (n % PAGE);
        if (whole > 0) {
          let done = 0;
          while (done < whole) done += writeSync(dataFd, buf, done, whole - done);
          extend(0, pos, whole / PAGE);
          pos += BigInt(whole);
        } else {
          extend(1, pos, 1);
          pos += BigInt(PAGE);
        }
      }
      close();
    }
  } finally {
    closeSync(mem);
  }
  return { regions, skipped };
}

/** Writes header, tables and names, then copies the pages from `dataPath`; returns the data offset. */
function assemble(outFd, dataPath, regions, skipped) {
  const entries = [...regions, ...skipped];
  const names = [];
  let nameBytes = 0;
  const refs = entries.map((e) => {
    if (e.name === '') return [0, 0];
    const b = Buffer.from(e.name, 'utf8');
    names.push(b);
    nameBytes += b.length;
    return [nameBytes - b.length, b.length];
  });
  const pages = regions.reduce((n, r) => n + r.pages, 0);
  const tablesEnd = HEADER_BYTES + ENTRY_BYTES * entries.length + nameBytes;
  const dataAt = Math.ceil(tablesEnd / PAGE) * PAGE;
  const head = Buffer.alloc(dataAt);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(VERSION, 8);
  head.writeUInt32LE(HEADER_BYTES, 12);
  head.writeUInt32LE(regions.length, 16);
  head.writeUInt32LE(skipped.length, 20);
  head.writeUInt32LE(nameBytes, 24);
  head.writeUInt32LE(pid, 28);
  head.writeBigUInt64LE(BigInt(dataAt), 32);
  head.writeBigUInt64LE(BigInt(pages), 40);
  entries.forEach((e, i) => {
    const o = HEADER_BYTES + i * ENTRY_BYTES;
    head.writeBigUInt64LE(e.vaddr, o);
    head.writeUInt32LE(e.pages, o + 8);
    head.writeUInt32LE(e.flags, o + 12);
    head.writeUInt32LE(refs[i][0], o + 16);
    head.writeUInt32LE(refs[i][1], o + 20);
  });
  let at = HEADER_BYTES + ENTRY_BYTES * entries.length;
  for (const b of names) {
    b.copy(head, at);
    at += b.length;
  }
  writeAll(outFd, head, head.length);
  const data = openSync(dataPath, 'r');
  try {
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const n = readSync(data, buf, 0, CHUNK, null);
      if (n === 0) break;
      writeAll(outFd, buf, n);
    }
  } finally {
    closeSync(data);
  }
  return { dataAt, pages };
}

function writeAll(fd, buf, length) {
  let done = 0;
  while (done < length) done += writeSync(fd, buf, done, length - done);
}

const out = args.out;
const dataPath = `${out}.data.tmp`;
const tmpPath = `${out}.tmp`;
let stopped = false;
try {
  if (args.stop) {
    process.kill(pid, 'SIGSTOP');
    stopped = true;
  }
  const maps = readMaps();
  const dataFd = openSync(dataPath, 'w');
  let result;
  try {
    result = capture(maps, dataFd);
  } finally {
    closeSync(dataFd);
  }
  if (stopped) {
    process.kill(pid, 'SIGCONT');
    stopped = false;
  }
  const { regions, skipped } = result;
  if (regions.length === 0) throw new Error(`nothing readable in process ${pid} (${skipped.length} ranges skipped)`);
  const outFd = openSync(tmpPath, 'w');
  let written;
  try {
    written = assemble(outFd, dataPath, regions, skipped);
  } finally {
    closeSync(outFd);
  }
  renameSync(tmpPath, out);
  if (!args.quiet) {
    const mib = ((written.pages * PAGE) / 2 ** 20).toFixed(1);
    process.stdout.write(`captured process ${pid} into ${out}: ${regions.length} regions, ${written.pages} pages (${mib} MiB), page data at 0x${written.dataAt.toString(16)}\n`);
    process.stdout.write(`skipped ${skipped.length} ranges:\n`);
    for (const s of skipped) {
      const reason = Object.keys(REASON).find((k) => REASON[k] === s.flags >>> 8);
      process.stdout.write(`  0x${s.vaddr.toString(16)} ${s.pages} pages ${reason} ${s.name}\n`);
    }
  }
} catch (e) {
  process.stderr.write(`capture-proc: ${e instanceof Error ? e.message : String(e)}\n`);
  rmSync(tmpPath, { force: true });
  process.exitCode = 1;
} finally {
  if (stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // The process is gone: nothing to resume.
    }
  }
  rmSync(dataPath, { force: true });
}
