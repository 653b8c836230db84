import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '@pagevisor/types';
import { PAGE_WORDS } from '../page-content.js';
import { fillFingerprintPage } from './fingerprint-page.js';
import { generateTrace } from './generate-trace.js';
import { TraceEventKind } from './trace-format.js';
import { TraceReader } from './trace-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'pagevisor-gen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string): string => join(dir, name);

describe('generateTrace', () => {
  it('writes exactly the events asked for, byte-identical for one seed, different for another', () => {
    const a = generateTrace(file('a'), { events: 5000, domains: 3, pagesPerDomain: 256, seed: 7 });
    const b = generateTrace(file('b'), { events: 5000, domains: 3, pagesPerDomain: 256, seed: 7 });
    const c = generateTrace(file('c'), { events: 5000, domains: 3, pagesPerDomain: 256, seed: 8 });
    expect(a.events).toBe(5000);
    expect(a.bytes).toBe(readFileSync(a.path).length);
    expect(a.domains).toEqual([0, 1, 2].map((i) => ({ name: `guest-${i}`, maxPages: 256 })));
    expect(readFileSync(b.path).equals(readFileSync(a.path))).toBe(true);
    expect(readFileSync(c.path).equals(readFileSync(a.path))).toBe(false);
    const r = TraceReader.open(a.path);
    expect(r.forEach(() => {})).toBe(5000);
  });

  it('boots every domain with the shared image, zero pages and private pages, then only touches populated pages', () => {
    const pages = 128;
    const t = generateTrace(file('boot'), { events: 20_000, domains: 2, pagesPerDomain: pages, seed: 3, imageFraction: 0.5, zeroFraction: 0.25 });
    const r = TraceReader.open(t.path);
    const populated = new Uint8Array(2 * pages);
    const bootWrites = new Map<string, string>();
    let lastT = 0;
    const kinds = [0, 0, 0, 0];
    for (const e of r) {
      expect(e.timeNs).toBeGreaterThanOrEqual(lastT);
      lastT = e.timeNs;
      const at = e.domain * pages + e.gfn;
      if (e.kind === TraceEventKind.populate) expect(populated[at]).toBe(0);
      else expect(populated[at], `event ${r.eventsRead - 1}`).toBe(1);
      populated[at] = e.kind === TraceEventKind.free ? 0 : 1;
      kinds[e.kind]!++;
      if (e.kind === TraceEventKind.writeFingerprint && !bootWrites.has(`${e.domain}:${e.gfn}`)) {
        bootWrites.set(`${e.domain}:${e.gfn}`, `${e.fingerprintLo}:${e.fingerprintHi}`);
      }
    }
    // First writes: image pages equal across domains, private ones differ, zero pages unwritten at boot.
    for (let g = 0; g < 64; g++) expect(bootWrites.get(`0:${g}`)).toBe(bootWrites.get(`1:${g}`));
    for (let g = 96; g < pages; g++) expect(bootWrites.get(`0:${g}`)).not.toBe(bootWrites.get(`1:${g}`));
    expect(kinds[TraceEventKind.write]).toBe(0);
    for (const k of [TraceEventKind.populate, TraceEventKind.writeFingerprint, TraceEventKind.free]) expect(kinds[k]).toBeGreaterThan(100);
  });

  it('writes the fingerprints\' pages in a content trace, with the same events otherwise', () => {
    const fp = TraceReader.open(generateTrace(file('fp'), { events: 600, pagesPerDomain: 64, seed: 4 }).path);
    const content = TraceReader.open(generateTrace(file('content'), { events: 600, pagesPerDomain: 64, seed: 4, fingerprint: false }).path);
    expect(content.header.fingerprint).toBe(false);
    const expected = new Uint32Array(PAGE_WORDS);
    let n = 0;
    for (let a = fp.read(), b = content.read(); a !== null || b !== null; a = fp.read(), b = content.read()) {
      expect([b!.timeNs, b!.domain, b!.gfn]).toEqual([a!.timeNs, a!.domain, a!.gfn]);
      if (a!.kind === TraceEventKind.writeFingerprint) {
        expect(b!.kind).toBe(TraceEventKind.write);
        fillFingerprintPage(expected, a!.fingerprintLo, a!.fingerprintHi);
        expect(Buffer.from(b!.page).equals(Buffer.from(expected.buffer, 0, PAGE_SIZE))).toBe(true);
      } else {
        expect(b!.kind).toBe(a!.kind);
      }
      n++;
    }
    expect(n).toBe(600);
  });

  it('refuses bad options', () => {
    expect(() => generateTrace(file('x'), { events: 0 })).toThrow(/events must be a positive integer/);
    expect(() => generateTrace(file('x'), { events: 1, domains: 0 })).toThrow(/domains/);
    expect(() => generateTrace(file('x'), { events: 1, imageFraction: 0.9, zeroFraction: 0.2 })).toThrow(/sum <= 1/);
  });
});
