import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { PAGE_SIZE } from '@pagevisor/types';
import { hex, ImageError } from './image-error.js';

/** Formats of guest memory image files. */
export const IMAGE_FORMATS = ['raw', 'elf', 'proc'] as const;

/**
 * Format of a guest memory image file: `raw` (a physical memory dump, QEMU `pmemsave`), `elf`
 * (a QEMU `dump-guest-memory` ELF core) or `proc` (a process captured by tools/capture-proc.mjs).
 */
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** Largest gfn span an image may have: 2^30 pages (4 TiB), the most gfns a domain may have. */
export const MAX_IMAGE_PAGES = 2 ** 30;

/** A run of guest pages filled from one stretch of the file (a raw dump, a PT_LOAD, a proc region). */
export interface ImageRegion {
  /** Index of the region in the file's own table: the ELF program header, the proc region; 0 for raw. */
  readonly index: number;
  /** First gfn the region fills. */
  readonly firstGfn: number;
  /** Pages it spans (gfns `firstGfn .. firstGfn + pages - 1`). */
  readonly pages: number;
  /** Address it had where it came from, as hex: guest-physical (raw, elf) or the process's virtual address (proc). */
  readonly address: string;
  /** File offset of its first byte. */
  readonly fileOffset: number;
  /** Bytes it takes from the file, from `fileOffset`; the rest of its pages read zeros (ELF p_memsz > p_filesz). */
  readonly fileBytes: number;
  /** Permissions as /proc/PID/maps shows them, e.g. `rw-p` (proc only). */
  readonly perms?: string;
  /** The mapping's name, e.g. `/usr/lib/libc.so.6` or `[heap]`; empty when anonymous (proc only). */
  readonly name?: string;
}

/** Why a capture left a range of the process out. */
export type SkipReason = 'special' | 'unreadable' | 'read-failed' | 'shared-file';

/** A range of the captured process that is not in the image, and why (proc only). */
export interface SkippedRange {
  /** Its virtual address, as hex. */
  readonly address: string;
  /** Its length in pages. */
  readonly pages: number;
  /** Permissions as /proc/PID/maps shows them. */
  readonly perms: string;
  /** The mapping's name (empty when anonymous). */
  readonly name: string;
  /**
   * `special`: [vvar], [vsyscall] or [vvar_vclock]; `unreadable`: no read permission;
   * `read-failed`: /proc/PID/mem refused the read; `shared-file`: a shared mapping of a file or device.
   */
  readonly reason: SkipReason;
}

/** What validating an image file found: where its pages go. */
export interface ImageLayout {
  /** Gfn span: one past the highest gfn a region fills. */
  readonly pages: number;
  /** The regions, in increasing gfn order, disjoint. */
  readonly regions: readonly ImageRegion[];
  /** Ranges left out of a proc capture (empty for other formats). */
  readonly skipped: readonly SkippedRange[];
}

/** What identifies the file's content at validation: a reader refuses a file that has changed since. */
export interface FileStamp {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  readonly dev: number;
}

/** Identity of the open file `fd`. */
export function stampOf(fd: number): FileStamp {
  const st = fstatSync(fd);
  return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev };
}

/** True when two stamps name the same, unchanged file. */
export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.dev === b.dev;
}

/**
 * Reads `length` bytes at `position` of `fd` into `dst` from `dstOffset`, looping over short
 * reads; returns the bytes read (fewer only at the end of the file).
 */
export function readFully(fd: number, dst: Uint8Array, dstOffset: number, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, dst, dstOffset + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** An image file open for validation: bounded reads of its headers and tables, never its pages. */
export class ImageFile {
  readonly path: string;
  readonly format: ImageFormat;
  readonly stamp: FileStamp;
  private readonly fd: number;

  constructor(path: string, format: ImageFormat) {
    this.path = path;
    this.format = format;
    this.fd = openSync(path, 'r');
    try {
      this.stamp = stampOf(this.fd);
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  /** The file's size in bytes. */
  get size(): number {
    return this.stamp.size;
  }

  /**
   * The `length` bytes at `position`, which the caller has checked lie inside the file
   * (`what` names them should the file have shrunk since).
   */
  read(position: number, length: number, what: string): Uint8Array {
    const out = new Uint8Array(length);
    const n = readFully(this.fd, out, 0, length, position);
    if (n < length) this.fail(position + n, `${what} ends after ${n} of ${length} bytes (the file shrank while it was read)`, `${length} bytes`);
    return out;
  }

  /**
   * Refuses `length` bytes at `position` that run past the end of the file: `what` names them.
   * The offset reported is `at` (the field that gave the position, by default `position`).
   */
  mustFit(position: number, length: number, what: string, at = position): void {
    if (position + length > this.size) {
      this.fail(at, `${what} ends past the file's ${hex(this.size)} bytes`, `an end at or before ${hex(this.size)}`);
    }
  }

  /** Throws the {@link ImageError} for a problem at `offset`. */
  fail(offset: number, problem: string, expected: string): never {
    throw new ImageError(this.path, this.format, offset, problem, expected);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Pages of `bytes` bytes, rounded up. */
export function pagesOf(bytes: number): number {
  return Math.ceil(bytes / PAGE_SIZE);
}
