import { closeSync, openSync, writeSync } from 'node:fs';
import { PAGE_SIZE } from '@pagevisor/types';
import {
  MAX_EVENT_BYTES,
  MAX_TRACE_DOMAIN_PAGES,
  MAX_TRACE_DOMAINS,
  MAX_TRACE_NAME_BYTES,
  TAG_END,
  TAG_NEXT_GFN,
  TAG_SAME_DOMAIN,
  TAG_SAME_TIME,
  TRACE_EVENT_KIND_NAMES,
  TRACE_FLAG_FINGERPRINT,
  TRACE_HEADER_FIXED_BYTES,
  TRACE_MAGIC,
  TRACE_VERSION,
  TraceEventKind,
  zigzag,
  type TraceDomain,
  type TraceEvent,
} from './trace-format.js';

/** What a new trace declares in its header. */
export interface TraceWriterHeader {
  /** True: writes carry 64-bit content fingerprints (`writeFingerprint`); false: whole pages (`write`). */
  readonly fingerprint: boolean;
  /** The domains (1 to 4096), indexed by the events' `domain`. */
  readonly domains: readonly TraceDomain[];
}

/** Options of {@link TraceWriter.create}. */
export interface TraceWriterOptions {
  /** Bytes buffered before each `writeSync` (default 64 KiB; at least 8 KiB). */
  readonly bufferBytes?: number;
}

/** Defaults of {@link TraceWriterOptions}. */
export const DEFAULT_TRACE_WRITER_OPTIONS: Required<TraceWriterOptions> = Object.freeze({ bufferBytes: 64 * 1024 });

/** What a closed writer wrote. */
export interface TraceWriteSummary {
  /** Events written. */
  readonly events: number;
  /** Bytes of the file, header and end record included. */
  readonly bytes: number;
}

const MIN_BUFFER_BYTES = 8192;

/**
 * Writes a trace (format in `trace-format.ts`) event by event through a buffer flushed to the
 * file with `fs.writeSync` in chunks, so memory stays at one buffer whatever the trace's length.
 * Times are absolute and must not go backwards; the writer stores deltas. An event with a bad
 * argument is refused with a RangeError and nothing of it is written. {@link close} writes the
 * end record; a trace left unclosed is refused by the reader as truncated.
 */
export class TraceWriter {
  /** The file written. */
  readonly path: string;
  /** Whether writes carry fingerprints. */
  readonly fingerprint: boolean;
  /** The domains of the header. */
  readonly domains: readonly TraceDomain[];

  private fd: number;
  private readonly buf: Uint8Array;
  private pos = 0;
  private flushed = 0;
  private eventsValue = 0;
  private lastTimeNs = 0;
  private lastDomain = 0;
  private readonly lastGfn: Int32Array;
  private readonly maxPages: Uint32Array;

  private constructor(path: string, fd: number, header: TraceWriterHeader, bufferBytes: number) {
    this.path = path;
    this.fd = fd;
    this.fingerprint = header.fingerprint;
    this.domains = header.domains.map((d) => ({ name: d.name, maxPages: d.maxPages }));
    this.buf = new Uint8Array(bufferBytes);
    this.lastGfn = new Int32Array(header.domains.length).fill(-1);
    this.maxPages = Uint32Array.from(header.domains, (d) => d.maxPages);
  }

  /**
   * Creates (or truncates) `path` and writes the header.
   * @throws RangeError when the header is invalid (no domains or more than 4096, max pages outside
   *   [1, 2^30], a name over 255 UTF-8 bytes) or the buffer size is; nothing is created then.
   */
  static create(path: string, header: TraceWriterHeader, options: TraceWriterOptions = {}): TraceWriter {
    const o = { ...DEFAULT_TRACE_WRITER_OPTIONS, ...options };
    if (!(Number.isSafeInteger(o.bufferBytes) && o.bufferBytes >= MIN_BUFFER_BYTES)) {
      throw new RangeError(`TraceWriter: bufferBytes must be an integer >= ${MIN_BUFFER_BYTES}, got ${o.bufferBytes}`);
    }
    const names = checkHeader(header);
    const fd = openSync(path, 'w');
    const w = new TraceWriter(path, fd, header, o.bufferBytes);
    try {
      w.writeHeader(names);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return w;
  }

  /** Events written so far. */
  get events(): number {
    return this.eventsValue;
  }

  /** Bytes written so far (buffered ones included). */
  get bytes(): number {
    return this.flushed + this.pos;
  }

  /** Appends: `domain` populates page `gfn` at `timeNs`. */
  populate(timeNs: number, domain: number, gfn: number): void {
    this.event(TraceEventKind.populate, timeNs, domain, gfn);
  }

  /** Appends: `domain` frees page `gfn` at `timeNs`. */
  free(timeNs: number, domain: number, gfn: number): void {
    this.event(TraceEventKind.free, timeNs, domain, gfn);
  }

  /** Appends a write of the whole page `page[offset .. offset + 4096)` (a content trace only). */
  write(timeNs: number, domain: number, gfn: number, page: Uint8Array, offset = 0): void {
    if (!(Number.isInteger(offset) && offset >= 0 && offset + PAGE_SIZE <= page.length)) {
      throw new RangeError(`TraceWriter.write: page[${offset} .. ${offset} + ${PAGE_SIZE}) is outside the ${page.length}-byte buffer`);
    }
    this.event(TraceEventKind.write, timeNs, domain, gfn);
    // A whole-page buffer is copied as it is: no view allocated per event.
    this.buf.set(offset === 0 && page.length === PAGE_SIZE ? page : page.subarray(offset, offset + PAGE_SIZE), this.pos);
    this.pos += PAGE_SIZE;
  }

  /** Appends a write of the page of 64-bit fingerprint (`lo`, `hi`), two u32 (a fingerprint trace only). */
  writeFingerprint(timeNs: number, domain: number, gfn: number, lo: number, hi: number): void {
    if (!(isU32(lo) && isU32(hi))) {
      throw new RangeError(`TraceWriter.writeFingerprint: fingerprint words must be integers in [0, 2^32), got ${lo}, ${hi}`);
    }
    this.event(TraceEventKind.writeFingerprint, timeNs, domain, gfn);
    const b = this.buf;
    let p = this.pos;
    b[p++] = lo & 0xff;
    b[p++] = (lo >>> 8) & 0xff;
    b[p++] = (lo >>> 16) & 0xff;
    b[p++] = lo >>> 24;
    b[p++] = hi & 0xff;
    b[p++] = (hi >>> 8) & 0xff;
    b[p++] = (hi >>> 16) & 0xff;
    b[p++] = hi >>> 24;
    this.pos = p;
  }

  /** Appends a copy of `e` (an event of another trace with the same header, say). */
  append(e: TraceEvent): void {
    switch (e.kind) {
      case TraceEventKind.populate:
        return this.populate(e.timeNs, e.domain, e.gfn);
      case TraceEventKind.free:
        return this.free(e.timeNs, e.domain, e.gfn);
      case TraceEventKind.write:
        return this.write(e.timeNs, e.domain, e.gfn, e.page);
      case TraceEventKind.writeFingerprint:
        return this.writeFingerprint(e.timeNs, e.domain, e.gfn, e.fingerprintLo, e.fingerprintHi);
      default:
        throw new RangeError(`TraceWriter.append: unknown event kind ${String(e.kind)}`);
    }
  }

  /** Writes the end record, flushes and closes the file. Closing twice is an error. */
  close(): TraceWriteSummary {
    this.checkOpen('close');
    this.room(1 + 8);
    this.buf[this.pos++] = TAG_END;
    this.varint(this.eventsValue);
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
    return { events: this.eventsValue, bytes: this.flushed };
  }

  /** Closes the file without the end record (after an error): the reader will refuse it as truncated. */
  abandon(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  /** Checks an event's fields, then writes its tag and varints; a payload follows in the caller. */
  private event(kind: TraceEventKind, timeNs: number, domain: number, gfn: number): void {
    const name = TRACE_EVENT_KIND_NAMES[kind];
    this.checkOpen(name);
    if (kind === TraceEventKind.write && this.fingerprint) {
      throw new RangeError('TraceWriter.write: this trace is in fingerprint mode (use writeFingerprint)');
    }
    if (kind === TraceEventKind.writeFingerprint && !this.fingerprint) {
      throw new RangeError('TraceWriter.writeFingerprint: this trace holds contents (use write)');
    }
    if (!(Number.isSafeInteger(timeNs) && timeNs >= this.lastTimeNs)) {
      throw new RangeError(`TraceWriter.${name}: time ${timeNs} ns must be an integer not before the previous event (${this.lastTimeNs} ns)`);
    }
    if (!(Number.isInteger(domain) && domain >= 0 && domain < this.maxPages.length)) {
      throw new RangeError(`TraceWriter.${name}: domain ${domain} is not an index in [0, ${this.maxPages.length})`);
    }
    if (!(Number.isInteger(gfn) && gfn >= 0 && gfn < this.maxPages[domain]!)) {
      throw new RangeError(`TraceWriter.${name}: gfn ${gfn} is outside domain ${domain}'s ${this.maxPages[domain]} pages`);
    }
    this.room(MAX_EVENT_BYTES);
    const dt = timeNs - this.lastTimeNs;
    const prevGfn = this.lastGfn[domain]!;
    let tag: number = kind;
    if (dt === 0) tag |= TAG_SAME_TIME;
    if (domain === this.lastDomain) tag |= TAG_SAME_DOMAIN;
    if (gfn === prevGfn + 1) tag |= TAG_NEXT_GFN;
    this.buf[this.pos++] = tag;
    if (dt !== 0) this.varint(dt);
    if (domain !== this.lastDomain) this.varint(domain);
    if (gfn !== prevGfn + 1) this.varint(zigzag(gfn - prevGfn));
    this.lastTimeNs = timeNs;
    this.lastDomain = domain;
    this.lastGfn[domain] = gfn;
    this.eventsValue++;
  }

  private writeHeader(names: readonly Uint8Array[]): void {
    const b = this.buf;
    writeU32(b, 0, TRACE_MAGIC);
    b[4] = TRACE_VERSION & 0xff;
    b[5] = TRACE_VERSION >>> 8;
    const flags = this.fingerprint ? TRACE_FLAG_FINGERPRINT : 0;
    b[6] = flags & 0xff;
    b[7] = flags >>> 8;
    writeU32(b, 8, PAGE_SIZE);
    writeU32(b, 12, this.domains.length);
    this.pos = TRACE_HEADER_FIXED_BYTES;
    this.domains.forEach((d, i) => {
      const name = names[i]!;
      this.room(2 * 8 + name.length);
      this.varint(d.maxPages);
      this.varint(name.length);
      b.set(name, this.pos);
      this.pos += name.length;
    });
  }

  private varint(v: number): void {
    const b = this.buf;
    let p = this.pos;
    // Division, not shifts: values go past 2^32.
    while (v >= 0x80) {
      b[p++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    b[p++] = v;
    this.pos = p;
  }

  private room(n: number): void {
    if (this.pos + n > this.buf.length) this.flush();
  }

  private flush(): void {
    let off = 0;
    while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off);
    this.flushed += this.pos;
    this.pos = 0;
  }

  private checkOpen(op: string): void {
    if (this.fd < 0) throw new RangeError(`TraceWriter.${op}: the trace ${this.path} is closed`);
  }
}

function isU32(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x <= 0xffff_ffff;
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = v >>> 24;
}

/** Checks a header; returns its names in UTF-8. */
function checkHeader(header: TraceWriterHeader): Uint8Array[] {
  const n = header.domains.length;
  if (!(n >= 1 && n <= MAX_TRACE_DOMAINS)) {
    throw new RangeError(`TraceWriter: a trace has 1 to ${MAX_TRACE_DOMAINS} domains, got ${n}`);
  }
  const encoder = new TextEncoder();
  return header.domains.map((d, i) => {
    if (!(Number.isInteger(d.maxPages) && d.maxPages >= 1 && d.maxPages <= MAX_TRACE_DOMAIN_PAGES)) {
      throw new RangeError(`TraceWriter: domains[${i}].maxPages must be an integer in [1, 2^30], got ${d.maxPages}`);
    }
    const name = encoder.encode(d.name);
    if (name.length > MAX_TRACE_NAME_BYTES) {
      throw new RangeError(`TraceWriter: domains[${i}].name takes ${name.length} bytes of UTF-8, over ${MAX_TRACE_NAME_BYTES}`);
    }
    return name;
  });
}
