import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateTrace, TraceEventKind, TraceFormatError, TraceReader, TraceWriter } from '@pagevisor/workloads';
import { formatReplay, replayTrace, type ReplayReport } from './replay.js';

const dir = mkdtempSync(join(tmpdir(), 'pagevisor-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string): string => join(dir, name);

/** The report without its wall-clock, memory and file-path figures. */
function deterministic(r: ReplayReport): string {
  const { wall: _wall, memory: _memory, trace, ...rest } = r;
  const { path: _path, ...traceRest } = trace;
  return JSON.stringify({ ...rest, trace: traceRest });
}

/** The distinct non-zero fingerprints held by populated pages at the end of a fingerprint trace. */
function distinctContentsAtEnd(path: string): { pages: number; distinct: number } {
  const held = new Map<string, string>();
  for (const e of TraceReader.open(path)) {
    const key = `${e.domain}:${e.gfn}`;
    if (e.kind === TraceEventKind.populate) held.set(key, '0:0');
    else if (e.kind === TraceEventKind.free) held.delete(key);
    else if (e.kind === TraceEventKind.writeFingerprint) held.set(key, `${e.fingerprintLo}:${e.fingerprintHi}`);
  }
  const contents = new Set(held.values());
  contents.delete('0:0');
  return { pages: held.size, distinct: contents.size };
}

describe('replayTrace', () => {
  const small = generateTrace(file('small.pvt'), { events: 6000, domains: 3, pagesPerDomain: 256, seed: 11 });

  it('replays every event under inline dedup: frames used = distinct contents held + the zero frame', async () => {
    const r = await replayTrace(small.path);
    const { pages, distinct } = distinctContentsAtEnd(small.path);
    expect(r.events).toBe(6000);
    expect(r.eventsByKind.populate + r.eventsByKind.writeFingerprint + r.eventsByKind.free).toBe(6000);
    expect(r.refused).toEqual({ count: 0, byErrno: {}, first: null });
    expect(r.totals.guestPages).toBe(pages);
    expect(r.domains.map((d) => d.name)).toEqual(['guest-0', 'guest-1', 'guest-2']);
    expect(r.domains.reduce((n, d) => n + d.totPages, 0)).toBe(pages);
    expect(r.totals.machineFramesUsed).toBe(distinct + 1);
    expect(r.totals.pagesSharing).toBeGreaterThan(20);
    expect(r.totals.zeroPages).toBeGreaterThan(20);
    expect(r.config).toEqual({ memoryMiB: 4, frames: 1024, contents: 'bytes', dedup: { strategy: 'inline' } });
    expect(r.trace).toMatchObject({ bytes: small.bytes, version: 1, fingerprint: true });
    expect(r.memory.rssSamples).toBeGreaterThanOrEqual(2);
    expect(r.memory.peakRssBytes).toBeGreaterThan(1 << 20);
    expect(r.simulatedNs).toBeGreaterThan(0);
    expect(formatReplay(r)).toMatch(/events 6,000: .*refused 0\n/);
  });

  it('keeps every content without dedup: frames used = pages held + the zero frame', async () => {
    const r = await replayTrace(small.path, { dedup: 'none' });
    const { pages, distinct } = distinctContentsAtEnd(small.path);
    expect(r.totals.machineFramesUsed).toBe(pages + 1);
    expect(pages).toBeGreaterThan(distinct + 50);
    expect(r.totals.pagesSharing).toBe(0);
  });

  it('gives one result for one trace, and the same for the content trace of the same seed', async () => {
    const a = await replayTrace(small.path);
    const b = await replayTrace(generateTrace(file('again.pvt'), { events: 6000, domains: 3, pagesPerDomain: 256, seed: 11 }).path);
    expect(deterministic(b)).toBe(deterministic(a));
    const c = await replayTrace(generateTrace(file('content.pvt'), { events: 6000, domains: 3, pagesPerDomain: 256, seed: 11, fingerprint: false }).path);
    expect(c.trace.fingerprint).toBe(false);
    expect(c.eventsByKind.write).toBe(a.eventsByKind.writeFingerprint);
    expect([c.totals, c.domains]).toEqual([a.totals, a.domains]);
    const d = await replayTrace(generateTrace(file('other.pvt'), { events: 6000, domains: 3, pagesPerDomain: 256, seed: 12 }).path);
    expect(d.totals).not.toEqual(a.totals);
  });

  it('replays a fingerprint trace on a machine of fingerprints without generating pages: the same figures under every strategy', async () => {
    for (const dedup of ['inline', 'ksm', 'esx', 'none']) {
      const opts = { dedup, ...(dedup === 'ksm' ? { dedupOptions: { pages_to_scan: 500, sleep_millisecs: 5 } } : {}), settleMs: 200 };
      const bytes = await replayTrace(small.path, opts);
      const fingerprints = await replayTrace(small.path, { ...opts, contents: 'fingerprints' });
      expect(fingerprints.config.contents).toBe('fingerprints');
      // A scanner's simulated CPU may differ: KSM's trees order frames by fingerprint here, by
      // memcmp there, and ESX's table is keyed by the fingerprint's low half here, by the hash of
      // the generated page there (walks and probes of other lengths); every other figure is the same.
      const scans = dedup === 'ksm' || dedup === 'esx';
      const figures = (r: typeof bytes) => [{ ...r.totals, ...(scans ? { dedupCpuNs: 0 } : {}) }, r.domains, r.refused];
      expect(figures(fingerprints), dedup).toEqual(figures(bytes));
    }
    // Each fingerprint becomes the frame's own: the trace's distinct contents are the frames used.
    const r = await replayTrace(small.path, { contents: 'fingerprints' });
    expect(r.totals.machineFramesUsed).toBe(distinctContentsAtEnd(small.path).distinct + 1);
  });

  it('wakes a scanning strategy between events and after them, and it merges', async () => {
    const r = await replayTrace(small.path, { dedup: 'ksm', dedupOptions: { pages_to_scan: 500, sleep_millisecs: 5 }, settleMs: 1000 });
    expect(r.dedup.strategy).toBe('ksm');
    expect(r.config.dedup).toEqual({ strategy: 'ksm', pages_to_scan: 500, sleep_millisecs: 5 });
    // 1 s of settling at one wake-up every 5 ms, after the events' own.
    expect(r.dedup.scannerWakes).toBeGreaterThan(200);
    expect(r.dedup.stats['full_scans']).toBeGreaterThan(2);
    expect(r.totals.pagesSharing).toBeGreaterThan(20);
    const none = await replayTrace(small.path, { dedup: 'none' });
    expect(r.totals.machineFramesUsed).toBeLessThan(none.totals.machineFramesUsed - 20);
    expect(r.simulatedNs).toBeGreaterThanOrEqual(1e9);
  });

  it('counts events refused for lack of RAM and goes on, leaving a sound host', async () => {
    const r = await replayTrace(small.path, { dedup: 'none', memoryMiB: 1 });
    // 256 frames for 768 pages: populates fail, then the writes to the pages they did not populate.
    expect(r.refused.byErrno['ENOMEM']).toBeGreaterThan(0);
    expect(r.refused.byErrno['ENOMEM']! + r.refused.byErrno['EINVAL']!).toBe(r.refused.count);
    expect(r.refused.first).toMatchObject({ kind: 'populate', errno: 'ENOMEM' });
    expect(r.events).toBe(6000);
    expect(r.totals.machineFramesUsed).toBeLessThanOrEqual(256);
  });

  it('refuses a malformed trace, a bad strategy and bad options', async () => {
    const bytes = readFileSync(small.path);
    const cut = file('cut.pvt');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 5));
    await expect(replayTrace(cut)).rejects.toThrow(TraceFormatError);
    const bad = file('bad.pvt');
    writeFileSync(bad, Buffer.from('not a trace at all'));
    await expect(replayTrace(bad)).rejects.toThrow(/byte 0 \(header\): expected the magic "PVTR"/);
    await expect(replayTrace(small.path, { dedup: 'magic' })).rejects.toThrow(/^plugin magic: not a built-in dedup plugin/);
    await expect(replayTrace(small.path, { dedup: 'ksm', dedupOptions: { nope: 1 } })).rejects.toThrow(/^plugin ksm: options refused: ksm has no option "nope"/);
    await expect(replayTrace(small.path, { memoryMiB: 0 })).rejects.toThrow(RangeError);
  });

  it('replays a hand-written trace: two domains writing one content share one frame', async () => {
    const path = file('hand.pvt');
    const w = TraceWriter.create(path, { fingerprint: true, domains: [{ name: 'a', maxPages: 4 }, { name: 'b', maxPages: 4 }] });
    w.populate(0, 0, 0);
    w.populate(0, 1, 2);
    w.writeFingerprint(100, 0, 0, 42, 0);
    w.writeFingerprint(200, 1, 2, 42, 0);
    w.close();
    const r = await replayTrace(path);
    expect(r.totals).toMatchObject({ guestPages: 2, machineFramesUsed: 2, pagesShared: 1, pagesSharing: 1 });
    expect(r.domains.map((d) => [d.name, d.sharedPages])).toEqual([['a', 1], ['b', 1]]);
    expect(r.simulatedNs).toBe(200);
  });
});
