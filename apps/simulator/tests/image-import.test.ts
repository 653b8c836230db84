// Guests booted from image files (raw, ELF core, proc capture) through runScenario: inline
// de-duplication keeps one frame per distinct page content; --verify reads them back against the files.
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asDomId, asGfn, PAGE_SIZE, Prng } from '@pagevisor/types';
import {
  buildElfCore,
  buildProcImage,
  checkScenarioImages,
  parseScenario,
  resolveImagePaths,
  type ImageFormat,
  type ScenarioInput,
} from '@pagevisor/workloads';
import { afterAll, describe, expect, it } from 'vitest';
import { runScenario } from '../src/run-scenario.js';

const dir = mkdtempSync(join(tmpdir(), 'pagevisor-image-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ZERO = new Uint8Array(PAGE_SIZE);
/** Distinct random pages P[0..8]. */
const P = Array.from({ length: 9 }, (_, i) => {
  const p = new Uint8Array(PAGE_SIZE);
  new Prng(100 + i).fillU32(new Uint32Array(p.buffer));
  return p;
});
/** The first 100 bytes of P[7], then zeros: what a PT_LOAD ending 100 bytes into a page leaves there. */
const Q = new Uint8Array(PAGE_SIZE);
Q.set(P[7]!.subarray(0, 100));

function concat(pages: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pages.length * PAGE_SIZE);
  pages.forEach((p, i) => out.set(p, i * PAGE_SIZE));
  return out;
}

/** 256 pages, `fn(gfn)` each. */
const guestPages = (fn: (gfn: number) => Uint8Array): Uint8Array[] => Array.from({ length: 256 }, (_, g) => fn(g));

/** Distinct page contents in `guests` (each a list of its 256 pages), the zero page apart. */
function distinctNonZero(guests: readonly (readonly Uint8Array[])[]): number {
  const seen = new Set<string>();
  for (const pages of guests) for (const p of pages) if (p.some((b) => b !== 0)) seen.add(Buffer.from(p).toString('base64'));
  return seen.size;
}

function scenario(guests: { name: string; path: string; format: ImageFormat }[]): ScenarioInput {
  return {
    name: 'images',
    machine: { memoryMiB: 4 },
    dedup: { strategy: 'inline' },
    durationS: 0,
    guests: guests.map(({ name, path, format }) => ({
      name,
      memoryMiB: 1, // 256 pages: exactly the image, nothing private beyond it
      image: { path, format },
      zeroFraction: 0,
      writeRatePagesPerS: 0,
    })),
  };
}

describe('guests booted from image files under inline de-duplication', () => {
  it('use one frame per distinct page content, the zero page sharing the hypervisor\'s zero frame', async () => {
    // raw: P0..P4 in turn, then 6 zero pages.
    const raw = guestPages((g) => (g < 250 ? P[g % 5]! : ZERO));
    writeFileSync(join(dir, 'a.raw'), concat(raw));
    // ELF: gfns 0..99 P3 P4 P5 in turn; a hole at 100..127; gfns 128..254 P6; gfn 255 Q (p_filesz ends 100 bytes into it).
    const elf = guestPages((g) => (g < 100 ? P[3 + (g % 3)]! : g < 128 ? ZERO : g < 255 ? P[6]! : Q));
    const tail = new Uint8Array(127 * PAGE_SIZE + 100);
    for (let k = 0; k < 127; k++) tail.set(P[6]!, k * PAGE_SIZE);
    tail.set(P[7]!.subarray(0, 100), 127 * PAGE_SIZE);
    writeFileSync(
      join(dir, 'b.elf'),
      buildElfCore([
        { paddr: 128 * PAGE_SIZE, data: tail, memsz: 128 * PAGE_SIZE },
        { paddr: 0, data: concat(elf.slice(0, 100)) },
      ]),
    );
    // proc: a region of 56 pages (P5 P6 in turn), one of 200 (100 × P8, 99 × P0, a zero page).
    const proc = guestPages((g) => (g < 56 ? P[5 + (g % 2)]! : g < 156 ? P[8]! : g < 255 ? P[0]! : ZERO));
    writeFileSync(
      join(dir, 'c.pvproc'),
      buildProcImage([
        { vaddr: 0x4000_0000, data: concat(proc.slice(0, 56)), name: '/usr/bin/app', perms: 'r-xp' },
        { vaddr: 0x7f00_0000_0000, data: concat(proc.slice(56)) },
      ]),
    );

    // Relative paths, resolved against the scenario's directory as the CLI does.
    const s = resolveImagePaths(
      parseScenario(
        scenario([
          { name: 'raw', path: 'a.raw', format: 'raw' },
          { name: 'elf', path: 'b.elf', format: 'elf' },
          { name: 'proc', path: 'c.pvproc', format: 'proc' },
        ]),
      ),
      dir,
    );
    expect(checkScenarioImages(s).map((i) => [i!.pages, i!.dataPages])).toEqual([
      [256, 256],
      [256, 228],
      [256, 256],
    ]);
    const report = await runScenario(s);
    expect(report.failures).toEqual([]);
    expect(report.guests.map((g) => [g.name, g.state, g.pagesBooted])).toEqual([
      ['raw', 'done', 256],
      ['elf', 'done', 256],
      ['proc', 'done', 256],
    ]);
    // P0..P6, P8 and Q; P7 itself is in no guest.
    expect(distinctNonZero([raw, elf, proc])).toBe(9);
    const t = report.totals;
    expect(t.guestPages).toBe(768);
    // One frame per distinct non-zero content, plus the zero frame that the 6 + 28 + 1 zero pages map.
    expect(t.machineFramesUsed).toBe(9 + 1);
    expect(t.zeroPages).toBe(6 + 28 + 1);
  });

  it('still count the zero frame when no guest has a zero page: the hypervisor allocates it at start', async () => {
    const a = guestPages((g) => P[g % 4]!);
    const b = guestPages((g) => P[2 + (g % 4)]!);
    writeFileSync(join(dir, 'x.raw'), concat(a));
    writeFileSync(join(dir, 'y.raw'), concat(b));
    const report = await runScenario(
      parseScenario(
        scenario([
          { name: 'x', path: join(dir, 'x.raw'), format: 'raw' },
          { name: 'y', path: join(dir, 'y.raw'), format: 'raw' },
        ]),
      ),
    );
    expect(report.failures).toEqual([]);
    expect(distinctNonZero([a, b])).toBe(6);
    expect([report.totals.machineFramesUsed, report.totals.zeroPages, report.totals.guestPages]).toEqual([6 + 1, 0, 512]);
  });
});

describe('guests booted from image files, verified against the files (--verify)', () => {
  /** Writes the raw, ELF and proc images of the first test under `prefix`; returns their paths and each guest's 256 pages. */
  function images(prefix: string) {
    const raw = guestPages((g) => (g < 250 ? P[g % 5]! : ZERO));
    writeFileSync(join(dir, `${prefix}.raw`), concat(raw));
    const tail = new Uint8Array(127 * PAGE_SIZE + 100);
    for (let k = 0; k < 127; k++) tail.set(P[6]!, k * PAGE_SIZE);
    tail.set(P[7]!.subarray(0, 100), 127 * PAGE_SIZE);
    const elfHead = guestPages((g) => P[3 + (g % 3)]!).slice(0, 100);
    writeFileSync(join(dir, `${prefix}.elf`), buildElfCore([{ paddr: 128 * PAGE_SIZE, data: tail, memsz: 128 * PAGE_SIZE }, { paddr: 0, data: concat(elfHead) }]));
    const proc = guestPages((g) => (g < 56 ? P[5 + (g % 2)]! : g < 156 ? P[8]! : g < 255 ? P[0]! : ZERO));
    writeFileSync(
      join(dir, `${prefix}.pvproc`),
      buildProcImage([
        { vaddr: 0x4000_0000, data: concat(proc.slice(0, 56)), name: '/usr/bin/app', perms: 'r-xp' },
        { vaddr: 0x7f00_0000_0000, data: concat(proc.slice(56)) },
      ]),
    );
    return scenario([
      { name: 'raw', path: join(dir, `${prefix}.raw`), format: 'raw' },
      { name: 'elf', path: join(dir, `${prefix}.elf`), format: 'elf' },
      { name: 'proc', path: join(dir, `${prefix}.pvproc`), format: 'proc' },
    ]);
  }

  it('read back every page as the file holds it, with the zero and private pages and the writes after boot', async () => {
    const base = images('v');
    // 512 pages a guest: the image's 256, then zeros and private pages; 1 s of writes over all of them.
    const s = parseScenario({
      ...base,
      durationS: 1,
      sampleIntervalS: 0.25,
      guests: base.guests.map((g) => ({ ...g, memoryMiB: 2, zeroFraction: 0.25, writeRatePagesPerS: 300, wholePageWriteFraction: 0.2 })),
    });
    checkScenarioImages(s);
    const r = await runScenario(s, { verify: true });
    expect(r.failures).toEqual([]);
    const v = r.verify!;
    expect(v.end).toMatchObject({ pages: 3 * 512, pagesVerified: 3 * 512, pagesDiffered: 0, pagesUnreadable: 0 });
    expect(v.samples.pagesVerified).toBeGreaterThan(0);
    expect(v.passed).toBe(true);
    expect(r.guests.every((g) => g.writes === 300)).toBe(true);
  });

  it('name the one page whose frame was corrupted: the image page only the ELF guest holds', async () => {
    const s = parseScenario(images('c'));
    let mapped = 0;
    const r = await runScenario(s, {
      verify: true,
      beforeVerify: (hv) => {
        // gfn 255 of the ELF guest (dom 2) holds Q, which no other page holds: a frame of its own.
        const table = hv.p2m.table(asDomId(2))!;
        mapped = hv.debugGfn(asDomId(2), asGfn(255));
        hv.memory.write(table.mfn(asGfn(255)), 50, Uint8Array.of(Q[50]! ^ 1), 0, 1);
      },
    });
    expect(mapped).toBe(1);
    const v = r.verify!;
    expect(v.end).toMatchObject({ pages: 768, pagesVerified: 768, pagesDiffered: 1 });
    expect(v.differences).toEqual([{ guest: 'elf', domId: 2, gfn: 255, tNs: r.simulatedNs, offset: 50, expected: Q[50], actual: Q[50]! ^ 1, differingBytes: 1 }]);
    expect(v.passed).toBe(false);
  });

  it('leave a guest whose image file changed after boot not verified, not passed', async () => {
    const s = parseScenario(images('m'));
    const path = join(dir, 'm.raw');
    const r = await runScenario(s, {
      verify: true,
      beforeVerify: () => {
        writeFileSync(path, concat(guestPages(() => P[8]!)));
        utimesSync(path, new Date(2_000_000_000_000), new Date(2_000_000_000_000));
      },
    });
    const v = r.verify!;
    expect(v.guests.verified).toBe(2);
    expect(v.guests.notVerified).toEqual([{ guest: 'raw', domId: 1, reason: expect.stringMatching(/^image file unreadable: .*changed after it was validated/) }]);
    expect(v.end).toMatchObject({ pages: 512, pagesVerified: 512, pagesDiffered: 0 });
    expect(v.passed).toBe(false);
  });
});
