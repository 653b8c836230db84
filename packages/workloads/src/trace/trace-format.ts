/**
 * The pagevisor trace format, version 1: page events of a host's domains over simulated time,
 * written and read as a stream (nothing holds the whole trace). All integers are little-endian.
 *
 * Header:
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 4 | magic `"PVTR"` (0x50 0x56 0x54 0x52) |
 * | 4 | 2 | version, u16 = 1 |
 * | 6 | 2 | flags, u16: bit 0 = fingerprint mode; the other bits must be 0 |
 * | 8 | 4 | page size, u32 = 4096 |
 * | 12 | 4 | domain count, u32 in [1, {@link MAX_TRACE_DOMAINS}] |
 * | 16 | … | per domain, in index order: varint max pages in [1, 2^30], varint name length in bytes in [0, 255], the name in UTF-8 |
 *
 * Then events, each a tag byte and the fields the tag does not make implicit:
 *
 * - tag bits 0-1: kind (0 populate, 1 write of full content, 2 write of a content fingerprint, 3 free);
 *   bit 2: same domain as the previous event; bit 3: gfn = the previous gfn of this domain + 1;
 *   bit 4: same time as the previous event; bits 5-7 must be 0;
 * - varint time delta in ns since the previous event (since 0 for the first), unless bit 4;
 * - varint domain index into the header's list, unless bit 2 (the first event's "previous" is 0);
 * - varint zigzag delta of the gfn from the previous gfn of the same domain (-1 before its first
 *   event), unless bit 3; gfns lie in [0, max pages of the domain);
 * - a write (kind 1): the page's 4096 bytes; a fingerprint write (kind 2): the 64-bit
 *   fingerprint as two u32, low word first (see `fillFingerprintPage`).
 *
 * A fingerprint-mode trace holds only fingerprint writes, a content trace only content writes.
 * The trace ends with the end record: tag 0xff, varint count of events; nothing may follow it.
 * A varint is unsigned LEB128, at most 8 bytes, canonical (no trailing zero byte), below 2^53;
 * zigzag maps d >= 0 to 2d and d < 0 to -2d - 1.
 */
import { PAGE_SIZE } from '@pagevisor/types';

/** The trace's magic number, the bytes `"PVTR"` read as a little-endian u32. */
export const TRACE_MAGIC = 0x52545650;
/** Version of the format this package writes and reads. */
export const TRACE_VERSION = 1;
/** Header flag: the trace holds content fingerprints instead of page contents. */
export const TRACE_FLAG_FINGERPRINT = 1;
/** Bytes of the fixed part of the header (before the domain records). */
export const TRACE_HEADER_FIXED_BYTES = 16;
/** Most domains a trace may name. */
export const MAX_TRACE_DOMAINS = 4096;
/** Most pages a trace domain may have (the hypervisor's largest guest-physical space). */
export const MAX_TRACE_DOMAIN_PAGES = 2 ** 30;
/** Longest domain name, in UTF-8 bytes. */
export const MAX_TRACE_NAME_BYTES = 255;
/** Longest varint, in bytes (8 × 7 bits hold any safe integer). */
export const MAX_VARINT_BYTES = 8;

/** What a trace event does. */
export const TraceEventKind = { populate: 0, write: 1, writeFingerprint: 2, free: 3 } as const;
/** A value of {@link TraceEventKind}. */
export type TraceEventKind = (typeof TraceEventKind)[keyof typeof TraceEventKind];
/** Names of the event kinds, indexed by kind, for messages and reports. */
export const TRACE_EVENT_KIND_NAMES = ['populate', 'write', 'write_fingerprint', 'free'] as const;

/** Tag bits of an event (module-private to the format: reader and writer share them). */
export const TAG_KIND_MASK = 0x03;
/** Tag bit: the domain is the previous event's. */
export const TAG_SAME_DOMAIN = 0x04;
/** Tag bit: the gfn is the previous gfn of the domain plus one. */
export const TAG_NEXT_GFN = 0x08;
/** Tag bit: the time is the previous event's. */
export const TAG_SAME_TIME = 0x10;
/** Tag bits that must be 0 in an event tag. */
export const TAG_RESERVED = 0xe0;
/** Tag of the end record. */
export const TAG_END = 0xff;
/** Most bytes one event takes: tag, three varints, a page. */
export const MAX_EVENT_BYTES = 1 + 3 * MAX_VARINT_BYTES + PAGE_SIZE;

/** A domain of a trace: its name and how many pages it may hold (also its guest-frame space). */
export interface TraceDomain {
  /** Name, at most 255 bytes of UTF-8. */
  readonly name: string;
  /** Most pages it may hold; its gfns are `[0, maxPages)`. */
  readonly maxPages: number;
}

/** The header of a trace, as read. */
export interface TraceHeader {
  /** Format version. */
  readonly version: number;
  /** True when writes carry fingerprints instead of contents. */
  readonly fingerprint: boolean;
  /** Page size in bytes (always 4096). */
  readonly pageSize: number;
  /** The domains, indexed by the events' `domain`. */
  readonly domains: readonly TraceDomain[];
  /** Bytes the header takes; the first event starts there. */
  readonly bytes: number;
}

/**
 * One event of a trace. A reader hands out one object, overwritten by each event it reads, so
 * copy what you keep.
 */
export interface TraceEvent {
  /** What it does. */
  readonly kind: TraceEventKind;
  /** Simulated time, in ns since the start of the trace. */
  readonly timeNs: number;
  /** Index of the domain in the header. */
  readonly domain: number;
  /** Guest frame number. */
  readonly gfn: number;
  /** A write's content ({@link PAGE_SIZE} bytes; the reader's buffer, overwritten by the next write); stale otherwise. */
  readonly page: Uint8Array;
  /** A fingerprint write's fingerprint, low 32 bits (unsigned); stale otherwise. */
  readonly fingerprintLo: number;
  /** A fingerprint write's fingerprint, high 32 bits (unsigned); stale otherwise. */
  readonly fingerprintHi: number;
}

/** A trace that is not one: bad magic or version, a bad field, or a file cut short. */
export class TraceFormatError extends Error {
  override readonly name = 'TraceFormatError';
  /** The trace file. */
  readonly path: string;
  /** Byte offset in the file of the field that was wrong. */
  readonly offset: number;
  /** Index of the event it belongs to; -1 in the header. */
  readonly eventIndex: number;
  /** What the format expected there. */
  readonly expected: string;
  /** What the file held instead. */
  readonly found: string;

  constructor(path: string, offset: number, eventIndex: number, expected: string, found: string) {
    super(`${path}: byte ${offset}${eventIndex >= 0 ? ` (event ${eventIndex})` : ' (header)'}: expected ${expected}, found ${found}`);
    this.path = path;
    this.offset = offset;
    this.eventIndex = eventIndex;
    this.expected = expected;
    this.found = found;
  }
}

/** Zigzag code of a signed delta: d >= 0 gives 2d, d < 0 gives -2d - 1 (arithmetic: deltas reach 2^31). */
export function zigzag(d: number): number {
  return d >= 0 ? 2 * d : -2 * d - 1;
}

/** Inverse of {@link zigzag}. */
export function unzigzag(z: number): number {
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}
