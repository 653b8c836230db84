import { PAGE_SIZE } from '@pagevisor/types';
import { ELF64_EHDR_BYTES, ELF64_PHDR_BYTES, ET_CORE, PT_LOAD, PT_NOTE } from './elf-image.js';
import type { SkipReason } from './image-file.js';
import {
  PROC_ENTRY_BYTES,
  PROC_HEADER_BYTES,
  PROC_IMAGE_MAGIC,
  PROC_IMAGE_VERSION,
  PROC_SKIP_REASONS,
  ProcFlags,
} from './proc-image.js';

/** A PT_LOAD of {@link buildElfCore}: `data` at guest-physical `paddr`, zeros up to `memsz`. */
export interface ElfSegmentSpec {
  /** Guest-physical address, page aligned. */
  readonly paddr: number;
  /** The segment's bytes in the file (p_filesz = its length). */
  readonly data: Uint8Array;
  /** p_memsz (default: the data's length). */
  readonly memsz?: number;
}

/** A region of {@link buildProcImage}. */
export interface ProcRegionSpec {
  /** Virtual address, page aligned. */
  readonly vaddr: number | bigint;
  /** Its pages' bytes, a whole number of pages (at least one). */
  readonly data: Uint8Array;
  /** Permissions as in /proc/PID/maps (default `rw-p`). */
  readonly perms?: string;
  /** Mapping name (default none). */
  readonly name?: string;
  /** No file behind it (default: true when it has no name or a `[...]` name). */
  readonly anonymous?: boolean;
}

/** A skipped range of {@link buildProcImage}. */
export interface ProcSkippedSpec {
  readonly vaddr: number | bigint;
  readonly pages: number;
  readonly reason: SkipReason;
  readonly perms?: string;
  readonly name?: string;
}

/** Default note of {@link buildElfCore}: one empty "CORE" note of type 1 (NT_PRSTATUS). */
const DEFAULT_NOTE = Uint8Array.from([5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x43, 0x4f, 0x52, 0x45, 0, 0, 0, 0]);

/**
 * An ELF core laid out as QEMU's `dump-guest-memory` writes one: the ELF header, a PT_NOTE and
 * one PT_LOAD per segment (in the order given), the note, then each segment's data back to back
 * (file offsets not page aligned). Built in memory: for tests and small examples.
 */
export function buildElfCore(segments: readonly ElfSegmentSpec[], note: Uint8Array = DEFAULT_NOTE): Uint8Array {
  const phnum = segments.length + 1;
  const noteAt = ELF64_EHDR_BYTES + phnum * ELF64_PHDR_BYTES;
  let size = noteAt + note.length;
  for (const s of segments) size += s.data.length;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  v.setUint16(16, ET_CORE, true);
  v.setUint16(18, 62, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setBigUint64(32, BigInt(ELF64_EHDR_BYTES), true);
  v.setUint16(52, ELF64_EHDR_BYTES, true);
  v.setUint16(54, ELF64_PHDR_BYTES, true);
  v.setUint16(56, phnum, true);
  const phdr = (i: number, type: number, offset: number, paddr: number, filesz: number, memsz: number): void => {
    const o = ELF64_EHDR_BYTES + i * ELF64_PHDR_BYTES;
    v.setUint32(o, type, true);
    v.setBigUint64(o + 8, BigInt(offset), true);
    v.setBigUint64(o + 24, BigInt(paddr), true);
    v.setBigUint64(o + 32, BigInt(filesz), true);
    v.setBigUint64(o + 40, BigInt(memsz), true);
  };
  phdr(0, PT_NOTE, noteAt, 0, note.length, note.length);
  out.set(note, noteAt);
  let at = noteAt + note.length;
  segments.forEach((s, i) => {
    phdr(i + 1, PT_LOAD, at, s.paddr, s.data.length, s.memsz ?? s.data.length);
    out.set(s.data, at);
    at += s.data.length;
  });
  return out;
}

function permsFlags(perms: string): number {
  return (
    (perms[0] === 'r' ? ProcFlags.read : 0) |
    (perms[1] === 'w' ? ProcFlags.write : 0) |
    (perms[2] === 'x' ? ProcFlags.exec : 0) |
    (perms[3] === 's' ? ProcFlags.shared : 0)
  );
}

/**
 * A proc image (see `PROC_IMAGE_MAGIC` for the format) of `regions` (in increasing vaddr
 * order) and `skipped` ranges, as tools/capture-proc.mjs writes one. Built in memory: for tests
 * and small examples.
 */
export function buildProcImage(regions: readonly ProcRegionSpec[], skipped: readonly ProcSkippedSpec[] = [], pid = 0): Uint8Array {
  const enc = new TextEncoder();
  const names: Uint8Array[] = [];
  let nameBytes = 0;
  const entries: { vaddr: bigint; pages: number; flags: number; nameOff: number; nameLen: number }[] = [];
  const addName = (name: string | undefined): [number, number] => {
    if (name === undefined || name === '') return [0, 0];
    const b = enc.encode(name);
    names.push(b);
    nameBytes += b.length;
    return [nameBytes - b.length, b.length];
  };
  let pages = 0;
  for (const r of regions) {
    const [nameOff, nameLen] = addName(r.name);
    const anon = r.anonymous ?? (r.name === undefined || r.name === '' || r.name.startsWith('['));
    const n = r.data.length / PAGE_SIZE;
    entries.push({ vaddr: BigInt(r.vaddr), pages: n, flags: permsFlags(r.perms ?? 'rw-p') | (anon ? ProcFlags.anonymous : 0), nameOff, nameLen });
    pages += n;
  }
  for (const s of skipped) {
    const [nameOff, nameLen] = addName(s.name);
    const reason = PROC_SKIP_REASONS.indexOf(s.reason);
    entries.push({ vaddr: BigInt(s.vaddr), pages: s.pages, flags: permsFlags(s.perms ?? '---p') | (reason << 8), nameOff, nameLen });
  }
  const tablesEnd = PROC_HEADER_BYTES + entries.length * PROC_ENTRY_BYTES + nameBytes;
  const dataAt = Math.ceil(tablesEnd / PAGE_SIZE) * PAGE_SIZE;
  const out = new Uint8Array(dataAt + pages * PAGE_SIZE);
  const v = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = PROC_IMAGE_MAGIC.charCodeAt(i);
  v.setUint32(8, PROC_IMAGE_VERSION, true);
  v.setUint32(12, PROC_HEADER_BYTES, true);
  v.setUint32(16, regions.length, true);
  v.setUint32(20, skipped.length, true);
  v.setUint32(24, nameBytes, true);
  v.setUint32(28, pid, true);
  v.setBigUint64(32, BigInt(dataAt), true);
  v.setBigUint64(40, BigInt(pages), true);
  entries.forEach((e, i) => {
    const o = PROC_HEADER_BYTES + i * PROC_ENTRY_BYTES;
    v.setBigUint64(o, e.vaddr, true);
    v.setUint32(o + 8, e.pages, true);
    v.setUint32(o + 12, e.flags, true);
    v.setUint32(o + 16, e.nameOff, true);
    v.setUint32(o + 20, e.nameLen, true);
  });
  let at = PROC_HEADER_BYTES + entries.length * PROC_ENTRY_BYTES;
  for (const b of names) {
    out.set(b, at);
    at += b.length;
  }
  at = dataAt;
  for (const r of regions) {
    out.set(r.data, at);
    at += r.data.length;
  }
  return out;
}
