import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { PAGE_SIZE } from '@pagevisor/types';
import {
  MAX_EVENT_BYTES,
  MAX_TRACE_DOMAIN_PAGES,
  MAX_TRACE_DOMAINS,
  MAX_TRACE_NAME_BYTES,
  MAX_VARINT_BYTES,
  TAG_END,
  TAG_KIND_MASK,
  TAG_NEXT_GFN,
  TAG_RESERVED,
  TAG_SAME_DOMAIN,
  TAG_SAME_TIME,
  TRACE_EVENT_KIND_NAMES,
  TRACE_FLAG_FINGERPRINT,
  TRACE_HEADER_FIXED_BYTES,
  TRACE_MAGIC,
  TRACE_VERSION,
  TraceEventKind,
  TraceFormatError,
  unzigzag,
  type TraceDomain,
  type TraceEvent,
  type TraceHeader,
} from './trace-format.js';

/** Options of {@link TraceReader.open}. */
export interface TraceReaderOptions {
  /** Bytes read from the file at a time (default 64 KiB; at least 8 KiB, so that any event fits). */
  readonly chunkBytes?: number;
}

/** Defaults of {@link TraceReaderOptions}. */
export const DEFAULT_TRACE_READER_OPTIONS: Required<TraceReaderOptions> = Object.freeze({ chunkBytes: 64 * 1024 });

const MIN_CHUNK_BYTES = 8192;

/** The one event object a reader fills. */
class ReaderEvent implements TraceEvent {
  kind: TraceEventKind = TraceEventKind.populate;
  timeNs = 0;
  domain = 0;
  gfn = 0;
  readonly page = new Uint8Array(PAGE_SIZE);
  /**
   * The fingerprint's words. In a typed array because words of 2^30 and more are no small
   * integers: stored in plain fields, V8 boxed one on the heap per event.
   */
  readonly fingerprint = new Uint32Array(2);

  get fingerprintLo(): number {
    return this.fingerprint[0]!;
  }

  get fingerprintHi(): number {
    return this.fingerprint[1]!;
  }
}

/**
 * Reads a trace (format in `trace-format.ts`) as a stream: fixed-size chunks with `fs.readSync`,
 * one event object and one page buffer reused for every event, so memory stays at one chunk and
 * one page whatever the trace's length, and nothing is allocated per event.
 *
 * {@link open} reads and checks the header; {@link read} (or iterating, or {@link forEach})
 * yields the events in order. Everything is checked as it is read: a malformed or cut-short trace
 * throws a {@link TraceFormatError} naming the byte offset and what was expected there, at the
 * point it is met (events before it have been yielded). The end record's event count must match
 * and nothing may follow it. The file is closed at the end, on an error, or by {@link close}.
 */
export class TraceReader implements Iterable<TraceEvent> {
  /** The file read. */
  readonly path: string;
  /** Its header. */
  readonly header: TraceHeader;
  /** Bytes of the file. */
  readonly fileBytes: number;
  /** The event object every read fills (also what {@link read} returns). */
  readonly event: TraceEvent;

  private fd: number;
  /** A Buffer, for `copy` into the page without a view allocated per event. */
  private readonly buf: Buffer;
  /** Next byte to parse in `buf`. */
  private pos = 0;
  /** End of the valid bytes in `buf`. */
  private end = 0;
  /** File offset of `buf[0]`. */
  private base = 0;
  private eof = false;
  private doneValue = false;
  private readonly ev = new ReaderEvent();
  private eventsValue = 0;
  private inHeader = true;
  private eventOffsetValue = 0;
  private lastTimeNs = 0;
  private lastDomain = 0;
  private lastGfn = new Int32Array(0);
  private maxPages = new Uint32Array(0);

  private constructor(path: string, fd: number, chunkBytes: number) {
    this.path = path;
    this.fd = fd;
    this.fileBytes = fstatSync(fd).size;
    this.buf = Buffer.alloc(chunkBytes);
    this.event = this.ev;
    this.header = this.readHeader();
  }

  /**
   * Opens `path` and reads its header.
   * @throws TraceFormatError when the header is malformed or cut short (the file is closed).
   * @throws RangeError on a bad `chunkBytes`; the `fs` error when the file cannot be opened.
   */
  static open(path: string, options: TraceReaderOptions = {}): TraceReader {
    const o = { ...DEFAULT_TRACE_READER_OPTIONS, ...options };
    if (!(Number.isSafeInteger(o.chunkBytes) && o.chunkBytes >= MIN_CHUNK_BYTES)) {
      throw new RangeError(`TraceReader: chunkBytes must be an integer >= ${MIN_CHUNK_BYTES}, got ${o.chunkBytes}`);
    }
    const fd = openSync(path, 'r');
    try {
      return new TraceReader(path, fd, o.chunkBytes);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Events read so far. */
  get eventsRead(): number {
    return this.eventsValue;
  }

  /** Byte offset of the last event read (of its tag). */
  get eventOffset(): number {
    return this.eventOffsetValue;
  }

  /** True once the end record has been read and checked. */
  get done(): boolean {
    return this.doneValue;
  }

  /**
   * The next event (always the same object, {@link event}, refilled), or null after the end
   * record. Allocates nothing.
   * @throws TraceFormatError when the trace is malformed or cut short here.
   */
  read(): TraceEvent | null {
    if (this.doneValue) return null;
    try {
      return this.readEvent();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Calls `fn` with each remaining event (the same object each time); returns how many. */
  forEach(fn: (e: TraceEvent) => void): number {
    let n = 0;
    for (let e = this.read(); e !== null; e = this.read()) {
      fn(e);
      n++;
    }
    return n;
  }

  /** Iterates the remaining events; every step yields the same event object and result object. */
  [Symbol.iterator](): Iterator<TraceEvent> {
    const step: IteratorYieldResult<TraceEvent> = { done: false, value: this.ev };
    const end: IteratorReturnResult<undefined> = { done: true, value: undefined };
    return {
      next: () => (this.read() === null ? end : step),
      return: () => {
        this.close();
        return end;
      },
    };
  }

  /** Closes the file (idempotent); later reads return null. */
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.doneValue = true;
  }

  // ---- parsing -------------------------------------------------------------------------------

  private readHeader(): TraceHeader {
    this.need(TRACE_HEADER_FIXED_BYTES, 'the 16-byte fixed header');
    const b = this.buf;
    const magic = u32(b, 0);
    if (magic !== TRACE_MAGIC) this.fail(0, 'the magic "PVTR" (50 56 54 52)', hexBytes(b, 0, 4));
    const version = b[4]! | (b[5]! << 8);
    if (version !== TRACE_VERSION) this.fail(4, `format version ${TRACE_VERSION}`, `version ${version}`);
    const flags = b[6]! | (b[7]! << 8);
    if ((flags & ~TRACE_FLAG_FINGERPRINT) !== 0) this.fail(6, 'flags with only bit 0 (fingerprint mode) possibly set', `0x${flags.toString(16)}`);
    const pageSize = u32(b, 8);
    if (pageSize !== PAGE_SIZE) this.fail(8, `page size ${PAGE_SIZE}`, `${pageSize}`);
    const n = u32(b, 12);
    if (!(n >= 1 && n <= MAX_TRACE_DOMAINS)) this.fail(12, `a domain count in [1, ${MAX_TRACE_DOMAINS}]`, `${n}`);
    this.pos = TRACE_HEADER_FIXED_BYTES;
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const domains: TraceDomain[] = [];
    for (let i = 0; i < n; i++) {
      const at = this.offset;
      const maxPages = this.varint(`domain ${i}'s max pages`);
      if (!(maxPages >= 1 && maxPages <= MAX_TRACE_DOMAIN_PAGES)) this.fail(at, `domain ${i}'s max pages in [1, 2^30]`, `${maxPages}`);
      const lenAt = this.offset;
      const len = this.varint(`the length of domain ${i}'s name`);
      if (len > MAX_TRACE_NAME_BYTES) this.fail(lenAt, `a name length of at most ${MAX_TRACE_NAME_BYTES} bytes (domain ${i})`, `${len}`);
      const nameAt = this.offset;
      this.need(len, `${len} bytes of domain ${i}'s name`);
      let name: string;
      try {
        name = decoder.decode(this.buf.subarray(this.pos, this.pos + len));
      } catch {
        return this.fail(nameAt, `domain ${i}'s name in UTF-8`, 'invalid UTF-8');
      }
      this.pos += len;
      domains.push({ name, maxPages });
    }
    this.lastGfn = new Int32Array(n).fill(-1);
    this.maxPages = Uint32Array.from(domains, (d) => d.maxPages);
    this.inHeader = false;
    return { version, fingerprint: (flags & TRACE_FLAG_FINGERPRINT) !== 0, pageSize, domains, bytes: this.offset };
  }

  private readEvent(): TraceEvent | null {
    const at = this.offset;
    this.eventOffsetValue = at;
    // One refill up front covers the whole event unless the file ends within it.
    if (this.end - this.pos < MAX_EVENT_BYTES) this.fill();
    this.need(1, 'an event tag or the end record (tag 0xff)');
    const tag = this.buf[this.pos++]!;
    if (tag === TAG_END) {
      this.readEnd();
      return null;
    }
    if ((tag & TAG_RESERVED) !== 0) this.fail(at, 'an event tag with bits 5-7 clear, or the end tag 0xff', `0x${tag.toString(16)}`);
    const kind = (tag & TAG_KIND_MASK) as TraceEventKind;
    const fp = this.header.fingerprint;
    if ((kind === TraceEventKind.write && fp) || (kind === TraceEventKind.writeFingerprint && !fp)) {
      this.fail(at, `no ${TRACE_EVENT_KIND_NAMES[kind]} event in a ${fp ? 'fingerprint' : 'content'} trace`, `tag 0x${tag.toString(16)}`);
    }
    const ev = this.ev;
    ev.kind = kind;
    if ((tag & TAG_SAME_TIME) === 0) {
      const dtAt = this.offset;
      const t = this.lastTimeNs + this.varint('the time delta in ns');
      if (t > Number.MAX_SAFE_INTEGER) this.fail(dtAt, 'a time below 2^53 ns', `${t} ns`);
      this.lastTimeNs = t;
    }
    ev.timeNs = this.lastTimeNs;
    if ((tag & TAG_SAME_DOMAIN) === 0) {
      const dAt = this.offset;
      const d = this.varint('the domain index');
      if (d >= this.maxPages.length) this.fail(dAt, `a domain index in [0, ${this.maxPages.length})`, `${d}`);
      this.lastDomain = d;
    }
    const dom = this.lastDomain;
    ev.domain = dom;
    const gAt = this.offset;
    const gfn = (tag & TAG_NEXT_GFN) !== 0 ? this.lastGfn[dom]! + 1 : this.lastGfn[dom]! + unzigzag(this.varint('the gfn delta'));
    const max = this.maxPages[dom]!;
    if (!(gfn >= 0 && gfn < max)) this.fail(gAt, `a gfn in [0, ${max}) of domain ${dom} ("${this.header.domains[dom]!.name}")`, `${gfn}`);
    this.lastGfn[dom] = gfn;
    ev.gfn = gfn;
    if (kind === TraceEventKind.write) {
      this.need(PAGE_SIZE, `${PAGE_SIZE} bytes of page content`);
      this.buf.copy(ev.page, 0, this.pos, this.pos + PAGE_SIZE);
      this.pos += PAGE_SIZE;
    } else if (kind === TraceEventKind.writeFingerprint) {
      this.need(8, 'an 8-byte fingerprint');
      ev.fingerprint[0] = u32(this.buf, this.pos);
      ev.fingerprint[1] = u32(this.buf, this.pos + 4);
      this.pos += 8;
    }
    this.eventsValue++;
    return ev;
  }

  private readEnd(): void {
    const at = this.offset;
    const count = this.varint('the event count of the end record');
    if (count !== this.eventsValue) this.fail(at, `the end record's event count ${this.eventsValue} (events read)`, `${count}`);
    const tail = this.fileBytes - this.offset;
    if (tail > 0) this.fail(this.offset, 'the end of the file after the end record', `${tail} more bytes`);
    this.close();
  }

  /** File offset of the next byte to parse. */
  private get offset(): number {
    return this.base + this.pos;
  }

  /** Moves the unparsed bytes to the front of the chunk and reads until it is full or the file ends. */
  private fill(): void {
    if (this.eof || this.fd < 0) return;
    const b = this.buf;
    if (this.pos > 0) {
      b.copyWithin(0, this.pos, this.end);
      this.base += this.pos;
      this.end -= this.pos;
      this.pos = 0;
    }
    while (this.end < b.length) {
      const got = readSync(this.fd, b, this.end, b.length - this.end, this.base + this.end);
      if (got === 0) {
        this.eof = true;
        break;
      }
      this.end += got;
    }
  }

  /** Makes `n` bytes available at `pos`, or refuses the trace as cut short. */
  private need(n: number, expected: string): void {
    if (this.end - this.pos >= n) return;
    this.fill();
    const have = this.end - this.pos;
    if (have < n) this.fail(this.offset, expected, have === 0 ? 'the end of the file' : `the end of the file after ${have} bytes`);
  }

  /** An unsigned LEB128 varint: at most 8 bytes, canonical, below 2^53. */
  private varint(what: string): number {
    if (this.end - this.pos < MAX_VARINT_BYTES) this.fill();
    const b = this.buf;
    const start = this.pos;
    let v = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (i === MAX_VARINT_BYTES) this.fail(this.base + start, `${what} (a varint of at most ${MAX_VARINT_BYTES} bytes)`, 'a longer one');
      if (this.pos >= this.end) this.fail(this.base + start, `${what} (a varint)`, 'the end of the file');
      const byte = b[this.pos++]!;
      v += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (byte === 0 && i > 0) this.fail(this.base + start, `${what} (a canonical varint)`, 'a trailing zero byte');
        break;
      }
      scale *= 0x80;
    }
    if (v > Number.MAX_SAFE_INTEGER) this.fail(this.base + start, `${what} (a varint below 2^53)`, `${v}`);
    return v;
  }

  private fail(offset: number, expected: string, found: string): never {
    throw new TraceFormatError(this.path, offset, this.inHeader ? -1 : this.eventsValue, expected, found);
  }
}

function u32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

function hexBytes(b: Uint8Array, at: number, n: number): string {
  return Array.from(b.subarray(at, at + n), (x) => x.toString(16).padStart(2, '0')).join(' ');
}
