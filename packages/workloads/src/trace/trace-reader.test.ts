import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PAGE_SIZE, Prng } from '@pagevisor/types';
import { TraceEventKind, TraceFormatError, type TraceEvent } from './trace-format.js';
import { TraceReader } from './trace-reader.js';
import { TraceWriter } from './trace-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'pagevisor-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const file = (): string => join(dir, `t${files++}.pvt`);

interface Copy {
  kind: TraceEventKind;
  timeNs: number;
  domain: number;
  gfn: number;
  page?: number[];
  fingerprint?: [number, number];
}

function copy(e: TraceEvent): Copy {
  const c: Copy = { kind: e.kind, timeNs: e.timeNs, domain: e.domain, gfn: e.gfn };
  if (e.kind === TraceEventKind.write) c.page = Array.from(e.page);
  if (e.kind === TraceEventKind.writeFingerprint) c.fingerprint = [e.fingerprintLo, e.fingerprintHi];
  return c;
}

function readAll(path: string, chunkBytes = 64 * 1024): Copy[] {
  const out: Copy[] = [];
  for (const e of TraceReader.open(path, { chunkBytes })) out.push(copy(e));
  return out;
}

/** Writes `bytes` as a trace and returns what reading all of it throws (null: nothing). */
function errorOf(bytes: Uint8Array): TraceFormatError | null {
  const path = file();
  writeFileSync(path, bytes);
  try {
    readAll(path, 8192);
    return null;
  } catch (e) {
    if (e instanceof TraceFormatError) return e;
    throw e;
  }
}

/** Random events over `domains` (as the writer takes them), with runs, repeats and long gaps. */
function randomEvents(seed: number, n: number, maxPages: number[], fingerprint: boolean): Copy[] {
  const prng = new Prng(seed);
  const last = maxPages.map(() => -1);
  const out: Copy[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    const r = prng.nextFloat();
    t += r < 0.3 ? 0 : r < 0.9 ? prng.nextInt(5000) : prng.nextInt(2 ** 20) * 2 ** 20;
    const domain = prng.nextFloat() < 0.5 && out.length > 0 ? out.at(-1)!.domain : prng.nextInt(maxPages.length);
    const max = maxPages[domain]!;
    const g = prng.nextFloat();
    const gfn = g < 0.4 ? Math.min(last[domain]! + 1, max - 1) : g < 0.5 ? max - 1 : prng.nextInt(max);
    last[domain] = gfn;
    const k = prng.nextInt(3);
    const c: Copy = { kind: k === 0 ? 0 : k === 1 ? (fingerprint ? 2 : 1) : 3, timeNs: t, domain, gfn };
    if (c.kind === TraceEventKind.write) {
      const page = new Uint8Array(PAGE_SIZE);
      prng.fillBytes(page.subarray(0, 64 + prng.nextInt(PAGE_SIZE - 64)));
      c.page = Array.from(page);
    }
    if (c.kind === TraceEventKind.writeFingerprint) {
      const x = prng.nextFloat();
      c.fingerprint = x < 0.1 ? [0, 0] : x < 0.2 ? [0xffff_ffff, 0xffff_ffff] : [prng.nextU32(), prng.nextU32()];
    }
    out.push(c);
  }
  return out;
}

function writeAll(path: string, fingerprint: boolean, maxPages: number[], events: Copy[]): { events: number; bytes: number } {
  const w = TraceWriter.create(path, { fingerprint, domains: maxPages.map((m, i) => ({ name: `d${i}-é`, maxPages: m })) });
  for (const e of events) {
    if (e.kind === TraceEventKind.populate) w.populate(e.timeNs, e.domain, e.gfn);
    else if (e.kind === TraceEventKind.free) w.free(e.timeNs, e.domain, e.gfn);
    else if (e.kind === TraceEventKind.write) w.write(e.timeNs, e.domain, e.gfn, Uint8Array.from(e.page!));
    else w.writeFingerprint(e.timeNs, e.domain, e.gfn, ...e.fingerprint!);
  }
  return w.close();
}

/** A one-domain fingerprint trace (domain "a", 16 pages): header of 19 bytes. */
function smallTrace(events: (w: TraceWriter) => void): Uint8Array {
  const path = file();
  const w = TraceWriter.create(path, { fingerprint: true, domains: [{ name: 'a', maxPages: 16 }] });
  events(w);
  w.close();
  return new Uint8Array(readFileSync(path));
}

describe('TraceWriter and TraceReader round trip', () => {
  it('reads back exactly the events written, in a fingerprint trace', () => {
    const maxPages = [1, 7, 2 ** 30, 300];
    const events = randomEvents(1, 10_000, maxPages, true);
    const path = file();
    const summary = writeAll(path, true, maxPages, events);
    expect(summary.events).toBe(events.length);
    expect(summary.bytes).toBe(readFileSync(path).length);
    const r = TraceReader.open(path);
    expect(r.header).toEqual({
      version: 1,
      fingerprint: true,
      pageSize: PAGE_SIZE,
      domains: maxPages.map((m, i) => ({ name: `d${i}-é`, maxPages: m })),
      bytes: r.header.bytes,
    });
    r.close();
    // Chunk boundaries fall everywhere with the smallest chunk.
    expect(readAll(path, 8192)).toEqual(events);
    expect(readAll(path)).toEqual(events);
  });

  it('reads back exactly the events written, in a content trace, across chunk boundaries', () => {
    const maxPages = [64, 5];
    const events = randomEvents(2, 400, maxPages, false);
    const path = file();
    writeAll(path, false, maxPages, events);
    expect(readAll(path, 8192)).toEqual(events);
    expect(readAll(path, 8192 + 13)).toEqual(events);
  });

  it('codes events compactly: a run of fingerprint writes to consecutive pages at one time takes 9 bytes each', () => {
    const bytes = smallTrace((w) => {
      for (let g = 0; g < 16; g++) w.writeFingerprint(0, 0, g, g, 0);
    });
    // 19-byte header, 16 × (tag + 8 fingerprint bytes), end record 0xff 0x10.
    expect(bytes.length).toBe(19 + 16 * 9 + 2);
    expect(Array.from(bytes.subarray(0, 4), (b) => String.fromCharCode(b)).join('')).toBe('PVTR');
  });

  it('hands out one event object and one page buffer, and yields nothing after the end', () => {
    const path = file();
    writeAll(path, false, [4], randomEvents(3, 50, [4], false));
    const r = TraceReader.open(path);
    const seen = new Set<TraceEvent>();
    const pages = new Set<Uint8Array>();
    for (let e = r.read(); e !== null; e = r.read()) {
      seen.add(e);
      pages.add(e.page);
    }
    expect(seen.size).toBe(1);
    expect(pages.size).toBe(1);
    expect(r.done).toBe(true);
    expect(r.eventsRead).toBe(50);
    expect(r.read()).toBeNull();
  });

  it('forEach counts the events; breaking out of a loop closes the file', () => {
    const path = file();
    writeAll(path, true, [8], randomEvents(4, 100, [8], true));
    expect(TraceReader.open(path).forEach(() => {})).toBe(100);
    const r = TraceReader.open(path);
    for (const _ of r) break;
    expect(r.done).toBe(true);
    expect(r.read()).toBeNull();
  });
});

describe('TraceWriter refusals', () => {
  it('refuses bad headers and bad events, writing nothing of them', () => {
    const path = file();
    expect(() => TraceWriter.create(path, { fingerprint: true, domains: [] })).toThrow(/1 to 4096 domains/);
    expect(() => TraceWriter.create(path, { fingerprint: true, domains: [{ name: 'a', maxPages: 0 }] })).toThrow(/maxPages/);
    expect(() => TraceWriter.create(path, { fingerprint: true, domains: [{ name: 'x'.repeat(256), maxPages: 1 }] })).toThrow(/256 bytes/);
    const w = TraceWriter.create(path, { fingerprint: true, domains: [{ name: 'a', maxPages: 4 }] });
    w.populate(10, 0, 1);
    const before = w.bytes;
    expect(() => w.populate(9, 0, 1)).toThrow(/before the previous event/);
    expect(() => w.populate(10, 1, 1)).toThrow(/domain 1 is not an index/);
    expect(() => w.free(10, 0, 4)).toThrow(/gfn 4 is outside/);
    expect(() => w.write(10, 0, 1, new Uint8Array(PAGE_SIZE))).toThrow(/fingerprint mode/);
    expect(() => w.writeFingerprint(10, 0, 1, 2 ** 32, 0)).toThrow(/fingerprint words/);
    expect(w.bytes).toBe(before);
    expect(w.events).toBe(1);
    expect(w.close()).toEqual({ events: 1, bytes: readFileSync(path).length });
    expect(() => w.populate(10, 0, 1)).toThrow(/closed/);
    expect(readAll(path)).toEqual([{ kind: 0, timeNs: 10, domain: 0, gfn: 1 }]);
  });
});

describe('TraceReader refuses malformed traces', () => {
  const good = smallTrace((w) => {
    w.populate(5, 0, 3); // 19: tag 0x04, dt 5, gfn delta zz(4) = 8
    w.writeFingerprint(5, 0, 3, 1, 2); // 22: tag 0x16, gfn delta zz(0) = 0, 8 bytes
    w.free(300, 0, 4); // 32: tag 0x0f, dt 295 (2 bytes)
  }); // 35: end 0xff 0x03
  const patched = (at: number, ...b: number[]): Uint8Array => {
    const x = good.slice();
    x.set(b, at);
    return x;
  };

  it('reads the well-formed trace it starts from', () => {
    expect(good.length).toBe(37);
    expect(errorOf(good)).toBeNull();
  });

  it.each([
    ['bad magic', patched(0, 0x50, 0x56, 0x54, 0x00), 0, /magic "PVTR"/],
    ['an unknown version', patched(4, 2), 4, /format version 1, found version 2/],
    ['unknown flags', patched(6, 3), 6, /flags/],
    ['another page size', patched(8, 0, 0x20), 8, /page size 4096, found 8192/],
    ['no domains', patched(12, 0), 12, /domain count in \[1, 4096\], found 0/],
    ['max pages 0', patched(16, 0), 16, /max pages in \[1, 2\^30\], found 0/],
    ['a name running past the file', patched(17, 0x7f), 18, /127 bytes of domain 0's name, found the end of the file after 19 bytes/],
    ['a name not in UTF-8', patched(18, 0xff), 18, /name in UTF-8/],
    ['a reserved tag bit', patched(19, 0x24), 19, /bits 5-7 clear/],
    ['a content write in a fingerprint trace', patched(22, 0x15), 22, /no write event in a fingerprint trace/],
    ['a domain index out of range', patched(22, 0x12, 1), 23, /domain index in \[0, 1\), found 1/],
    ['a gfn out of range', patched(19, 0x04, 5, 40), 21, /gfn in \[0, 16\) of domain 0 \("a"\), found 19/],
    ['a gfn below 0', patched(19, 0x04, 5, 3), 21, /found -3/],
    ['a varint with a trailing zero byte', patched(20, 0x85, 0x00), 20, /canonical varint/],
    ['a varint over 8 bytes', Uint8Array.from([...good.subarray(0, 20), ...Array(9).fill(0x80), 1]), 20, /at most 8 bytes/],
    ['a wrong event count', patched(36, 4), 36, /event count 3 \(events read\), found 4/],
    ['bytes after the end record', Uint8Array.from([...good, 0]), 37, /end of the file after the end record, found 1 more bytes/],
  ])('%s, naming the offset', (_what, bytes, offset, message) => {
    const e = errorOf(bytes);
    expect(e).toBeInstanceOf(TraceFormatError);
    expect(e!.offset).toBe(offset);
    expect(e!.message).toMatch(message);
    expect(e!.message).toContain(`byte ${offset} `);
  });

  it('refuses the trace cut at every byte, naming where it ends and what was expected', () => {
    for (let n = 0; n < good.length; n++) {
      const e = errorOf(good.subarray(0, n));
      expect(e, `cut at ${n}`).toBeInstanceOf(TraceFormatError);
      expect(e!.offset).toBeLessThanOrEqual(n);
      expect(e!.found).toMatch(/the end of the file/);
    }
    expect(errorOf(good.subarray(0, 10))!.message).toMatch(/byte 0 \(header\): expected the 16-byte fixed header, found the end of the file after 10 bytes/);
    expect(errorOf(good.subarray(0, 22))!.message).toMatch(/byte 22 \(event 1\): expected an event tag or the end record/);
    expect(errorOf(good.subarray(0, 27))!.message).toMatch(/byte 24 \(event 1\): expected an 8-byte fingerprint, found the end of the file after 3 bytes/);
  });

  it('refuses a content trace cut inside a page, after yielding the events before it', () => {
    const path = file();
    const w = TraceWriter.create(path, { fingerprint: false, domains: [{ name: 'a', maxPages: 2 }] });
    w.populate(0, 0, 0);
    w.write(0, 0, 0, new Uint8Array(PAGE_SIZE).fill(7));
    w.close();
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 100));
    const r = TraceReader.open(path, { chunkBytes: 8192 });
    expect(r.read()!.kind).toBe(TraceEventKind.populate);
    expect(() => r.read()).toThrow(/expected 4096 bytes of page content, found the end of the file after 3998 bytes/);
    expect(r.read()).toBeNull();
  });

  it('refuses a bad chunk size', () => {
    expect(() => TraceReader.open(file(), { chunkBytes: 100 })).toThrow(RangeError);
  });
});
