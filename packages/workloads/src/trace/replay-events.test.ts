import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HypervisorError, PAGE_SIZE, type DomId, type Gfn } from '@pagevisor/types';
import { PAGE_WORDS } from '../page-content.js';
import { fillFingerprintPage } from './fingerprint-page.js';
import { replayTraceEvents, type TraceReplayTarget } from './replay-events.js';
import { TraceFormatError } from './trace-format.js';
import { TraceReader } from './trace-reader.js';
import { TraceWriter } from './trace-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'pagevisor-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const file = (): string => join(dir, `r${files++}.pvt`);

/** Records what the replay does; scans every `periodNs` when given one; refuses writes to gfn 13. */
class FakeTarget implements TraceReplayTarget {
  readonly log: string[] = [];
  readonly pages = new Map<string, string>();
  readonly dedup: TraceReplayTarget['dedup'];
  private nextWake = 0;

  constructor(periodNs?: number) {
    this.dedup = periodNs === undefined ? { name: 'fake' } : { name: 'fake-scan', nextWakeNs: () => this.nextWake };
    this.period = periodNs ?? 0;
  }
  private readonly period: number;

  createDomain(opts: { name: string; maxPages: number }): DomId {
    this.log.push(`create ${opts.name} ${opts.maxPages}`);
    return (this.log.length + 100) as DomId;
  }
  setDomainMergeable(dom: DomId, on: boolean): void {
    this.log.push(`mergeable ${dom} ${on}`);
  }
  populatePhysmap(dom: DomId, gfns: ArrayLike<number>): number {
    this.log.push(`populate ${dom} ${Array.from(gfns).join(',')}`);
    return gfns.length;
  }
  decreaseReservation(dom: DomId, gfns: ArrayLike<number>): number {
    this.log.push(`free ${dom} ${Array.from(gfns).join(',')}`);
    return gfns.length;
  }
  writePage(dom: DomId, gfn: Gfn, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    if (gfn === 13) throw new HypervisorError('ENOMEM', 'write_page', 'no frame for gfn 13');
    if (gfn === 14) throw new Error('a bug');
    this.log.push(`write ${dom} ${gfn} ${offset} ${srcOffset} ${length}`);
    this.pages.set(`${dom}:${gfn}`, Buffer.from(src.subarray(srcOffset, srcOffset + length)).toString('base64'));
  }
  wakeDedup(nowNs: number): void {
    this.log.push(`wake ${nowNs}`);
    this.nextWake = nowNs + this.period;
  }
}

function trace(fingerprint: boolean, events: (w: TraceWriter) => void): string {
  const path = file();
  const w = TraceWriter.create(path, { fingerprint, domains: [{ name: 'a', maxPages: 16 }, { name: 'b', maxPages: 32 }] });
  events(w);
  w.close();
  return path;
}

const fpPage = (lo: number, hi: number): string => {
  const p = new Uint32Array(PAGE_WORDS);
  fillFingerprintPage(p, lo, hi);
  return Buffer.from(p.buffer, 0, PAGE_SIZE).toString('base64');
};

describe('replayTraceEvents', () => {
  it('creates the header\'s domains and applies each event in order, writing fingerprints\' pages', () => {
    const path = trace(true, (w) => {
      w.populate(10, 0, 3);
      w.writeFingerprint(20, 0, 3, 5, 6);
      w.populate(20, 1, 31);
      w.writeFingerprint(30, 1, 31, 0, 0);
      w.free(40, 0, 3);
    });
    const t = new FakeTarget();
    const r = replayTraceEvents(TraceReader.open(path), t);
    expect(t.log).toEqual([
      'create a 16',
      'create b 32',
      'mergeable 101 true',
      'mergeable 102 true',
      'populate 101 3',
      'write 101 3 0 0 4096',
      'populate 102 31',
      'write 102 31 0 0 4096',
      'free 101 3',
    ]);
    expect(t.pages.get('101:3')).toBe(fpPage(5, 6));
    expect(t.pages.get('102:31')).toBe(fpPage(0, 0));
    expect(r).toMatchObject({
      domIds: [101, 102],
      events: 5,
      eventsByKind: { populate: 2, write: 0, writeFingerprint: 2, free: 1 },
      refused: 0,
      firstRefusal: null,
      scannerWakes: 0,
      simulatedNs: 40,
    });
    expect(r.rssSamples).toBe(2);
    expect(r.peakRssBytes).toBeGreaterThan(1 << 20);
  });

  it('writes a content trace\'s pages as they are', () => {
    const page = new Uint8Array(PAGE_SIZE).map((_, i) => i * 7);
    const path = trace(false, (w) => {
      w.populate(0, 1, 2);
      w.write(0, 1, 2, page);
    });
    const t = new FakeTarget();
    expect(replayTraceEvents(TraceReader.open(path), t, { mergeable: false, rssEveryEvents: 0 })).toMatchObject({ events: 2, peakRssBytes: 0, rssSamples: 0 });
    expect(t.log.some((l) => l.startsWith('mergeable'))).toBe(false);
    expect(t.pages.get('102:2')).toBe(Buffer.from(page).toString('base64'));
  });

  it('runs scanner wake-ups due at or before each event first, then until settleNs after the last', () => {
    const path = trace(true, (w) => {
      w.populate(250, 0, 0);
      w.populate(300, 0, 1);
      w.populate(300, 0, 2);
    });
    const t = new FakeTarget(100);
    const r = replayTraceEvents(TraceReader.open(path), t, { mergeable: false, settleNs: 150 });
    expect(t.log.slice(2)).toEqual(['wake 0', 'wake 100', 'wake 200', 'populate 101 0', 'wake 300', 'populate 101 1', 'populate 101 2', 'wake 400']);
    expect(r.scannerWakes).toBe(5);
    expect(r.simulatedNs).toBe(450);
  });

  it('counts refused events and goes on; other errors and malformed traces stop it', () => {
    const path = trace(true, (w) => {
      w.populate(0, 0, 13);
      w.writeFingerprint(1, 0, 13, 1, 0);
      w.writeFingerprint(2, 0, 13, 2, 0);
      w.populate(3, 0, 12);
    });
    const t = new FakeTarget();
    const r = replayTraceEvents(TraceReader.open(path), t);
    expect(r.events).toBe(4);
    expect(r.refused).toBe(2);
    expect(r.refusedByErrno).toEqual({ ENOMEM: 2 });
    expect(r.firstRefusal).toMatchObject({ event: 1, kind: 'write_fingerprint', domain: 0, gfn: 13, timeNs: 1, errno: 'ENOMEM' });
    // The first event takes 2 bytes (tag, gfn delta: time 0 and domain 0 are implicit).
    expect(r.firstRefusal!.offset).toBe(TraceReader.open(path).header.bytes + 2);
    expect(t.log.at(-1)).toBe('populate 101 12');

    const bug = trace(true, (w) => w.writeFingerprint(0, 0, 14, 1, 0));
    expect(() => replayTraceEvents(TraceReader.open(bug), new FakeTarget())).toThrow('a bug');

    const cut = file();
    const w = TraceWriter.create(cut, { fingerprint: true, domains: [{ name: 'a', maxPages: 4 }] });
    w.populate(0, 0, 1);
    w.abandon();
    expect(() => replayTraceEvents(TraceReader.open(cut), new FakeTarget())).toThrow(TraceFormatError);
  });

  it('refuses bad options', () => {
    const path = trace(true, () => {});
    expect(() => replayTraceEvents(TraceReader.open(path), new FakeTarget(), { rssEveryEvents: -1 })).toThrow(RangeError);
    expect(() => replayTraceEvents(TraceReader.open(path), new FakeTarget(), { settleNs: 0.5 })).toThrow(RangeError);
  });
});
