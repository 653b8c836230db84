import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMachineMemory } from '@pagevisor/machine';
import { asMfn, PAGE_SIZE, Prng } from '@pagevisor/types';
import { measurement, type Bound, type Measurement } from '../measurement.js';
import { measureNativeLimits, type NativeLimits } from '../native-limits.js';
import { timeCycle, timeRates } from '../measure.js';
import type { SuiteContext, SuiteResult } from '../suite-context.js';

/** Ids of the limits other suites take ratios to. */
export const LIMIT = {
  copy: 'limits.machine.copy',
  hash: 'limits.machine.hash',
  compare: 'limits.machine.compare',
  copyHash: 'limits.machine.copy-hash',
  hashCompare: 'limits.machine.hash-compare',
  fileWrite: 'limits.file.write',
  fileRead: 'limits.file.read',
} as const;

/** Ids of the C reference's limits (tools/native-limits/limits.c), measured when there is a C compiler. */
export const NATIVE_LIMIT = {
  copy: 'limits.native.copy',
  hash: 'limits.native.hash',
  hashCold: 'limits.native.hash-cold',
  compare: 'limits.native.compare',
  copyHash: 'limits.native.copy-hash',
  hashCompare: 'limits.native.hash-compare',
  firstTouch: 'limits.native.first-touch',
} as const;

/**
 * The bounds the hot paths' figures carry ratios to, with their names in the tables: the
 * JavaScript ones (kind `limit`: this process's MachineMemory primitives) and the native ones
 * (kind `native`: the C reference's memcpy, memcmp and XXH64 loops).
 */
export const BOUND = {
  copy: { id: LIMIT.copy, name: 'copy' },
  hash: { id: LIMIT.hash, name: 'hash' },
  compare: { id: LIMIT.compare, name: 'compare' },
  hashCompare: { id: LIMIT.hashCompare, name: 'hash+compare' },
  nativeCopy: { id: NATIVE_LIMIT.copy, name: 'native memcpy', kind: 'native' },
  nativeCompare: { id: NATIVE_LIMIT.compare, name: 'native memcmp', kind: 'native' },
  nativeHashInPlace: { id: NATIVE_LIMIT.hashCold, name: 'native XXH64 in place', kind: 'native' },
  nativeCopyHash: { id: NATIVE_LIMIT.copyHash, name: 'native copy+XXH64', kind: 'native' },
  nativeHashCompare: { id: NATIVE_LIMIT.hashCompare, name: 'native hash+compare', kind: 'native' },
} as const satisfies Readonly<Record<string, Bound>>;

/** Key of the limits suite's `details` that says why the C reference was not measured (absent when it was). */
export const NATIVE_UNAVAILABLE = 'nativeUnavailable';

/** Frames and file slots the limits work on. */
export function limitPages(quick: boolean): number {
  return quick ? 4096 : 65536;
}

/** Per sample i, 1 / (1/a_i + 1/b_i): the rate of doing both operations one after the other. */
function serial(a: readonly number[], b: readonly number[]): number[] {
  return a.map((x, i) => 1 / (1 / x + 1 / b[i]!));
}

/**
 * This machine's limits, measured with the same primitives and operand kinds as the hot paths:
 * a 4 KiB source whose first word changes every page, copied into frames already touched once
 * (`MachineMemory.write`), hashed (`hashPage`: XXH64 in place, the source built in the machine's
 * `pageBuffer` as the simulator's guests build theirs), compared equal in full
 * (`frameEquals`); and positioned 4 KiB writes and reads of a temporary file, without fsync.
 */
export async function runLimits(ctx: SuiteContext): Promise<SuiteResult> {
  const pages = limitPages(ctx.quick);
  const repeats = ctx.repeats;
  const memory = await createMachineMemory({ frames: pages });
  const src = memory.pageBuffer(1);
  new Prng(1).fillBytes(src);
  const srcWords = new Uint32Array(src.buffer);
  for (let m = 0; m < pages; m++) memory.write(asMfn(m), 0, src, 0, PAGE_SIZE);
  srcWords[0] = 0;

  ctx.log('limits: 4 KiB copy, hash, compare');
  let frame = 0;
  const copy = timeRates({
    ops: pages,
    repeats,
    run: (n) => {
      for (let i = 0; i < n; i++) {
        srcWords[0] = i;
        memory.write(asMfn(frame), 0, src, 0, PAGE_SIZE);
        if (++frame === pages) frame = 0;
      }
    },
  });
  let sink = 0;
  const hash = timeRates({
    ops: pages,
    repeats,
    run: (n) => {
      for (let i = 0; i < n; i++) {
        srcWords[0] = i;
        sink ^= memory.hashPage(src);
      }
    },
  });
  // Every frame holds src with some first word: set it so that each compare is equal in full.
  for (let m = 0; m < pages; m++) memory.write(asMfn(m), 0, src, 0, PAGE_SIZE);
  const compare = timeRates({
    ops: pages,
    repeats,
    run: (n) => {
      for (let i = 0; i < n; i++) if (memory.frameEquals(asMfn(i % pages), src)) sink++;
    },
  });
  if (sink === 0.5) ctx.log('unreachable'); // keeps the loops' results alive

  ctx.log('limits: 4 KiB file slots (page cache, no fsync)');
  const dir = mkdtempSync(join(tmpdir(), 'pagevisor-bench-limits-'));
  const fd = openSync(join(dir, 'slots'), 'w+');
  const out = new Uint8Array(PAGE_SIZE);
  let file: number[][];
  try {
    file = timeCycle(pages, repeats, 1, [
      () => {
        for (let i = 0; i < pages; i++) {
          srcWords[0] = i;
          writeSync(fd, src, 0, PAGE_SIZE, i * PAGE_SIZE);
        }
      },
      () => {
        for (let i = 0; i < pages; i++) readSync(fd, out, 0, PAGE_SIZE, i * PAGE_SIZE);
      },
    ]);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }

  const m = (group: string, key: string, name: string, samples: number[], unit = 'pages/s'): Measurement =>
    measurement({ suite: 'limits', group, key, name, unit, better: 'higher', samples });
  ctx.log('limits: the C reference (memcpy, memcmp, XXH64, cc -O2)');
  let native: NativeLimits | undefined;
  let nativeNote: string;
  let unavailable: string | undefined;
  try {
    native = await measureNativeLimits(pages, repeats);
    nativeNote = `native: tools/native-limits/limits.c built with cc -O2, the same shapes (a hot 4 KiB source whose first word changes every page; ${pages} frames touched once), CPU time of one process; its XXH64 (written from the specification) checked equal to xxhash-wasm's on its page. first-touch: the first write to each page of a fresh mapping (the kernel's fault and zeroing), which every new frame pays.`;
  } catch (e) {
    unavailable = (e as Error).message;
    nativeNote = `native: not measured: ${unavailable}`;
  }
  const nativeRows = native === undefined
    ? []
    : [
        m('native', 'copy', 'C: memcpy 4 KiB into a frame', native.copy),
        m('native', 'hash', 'C: XXH64 of a hot 4 KiB page', native.hash),
        m('native', 'hash-cold', 'C: XXH64 of each frame in place (cold)', native.hashCold),
        m('native', 'compare', 'C: memcmp 4 KiB, equal', native.compare),
        m('native', 'copy-hash', 'C: XXH64 then memcpy, a loop (new content written)', native.copyHash),
        m('native', 'hash-compare', 'C: XXH64 then memcmp, a loop (stored content written)', native.hashCompare),
        m('native', 'first-touch', 'C: first write to a never-touched page', native.firstTouch),
      ];
  return {
    suite: 'limits',
    measurements: [
      ...nativeRows,
      m('machine', 'copy', '4 KiB copy', copy),
      m('machine', 'hash', 'XXH64 of 4 KiB (WebAssembly, in place)', hash),
      m('machine', 'compare', '4 KiB compare (equal, in full)', compare),
      m('machine', 'copy-hash', 'copy+hash: 1/(1/copy + 1/hash)', serial(copy, hash)),
      m('machine', 'hash-compare', 'hash+compare: 1/(1/hash + 1/compare)', serial(hash, compare)),
      m('file', 'write', '4 KiB slot write (pwrite, page cache, no fsync)', file[0]!),
      m('file', 'read', '4 KiB slot read (pread, page cache)', file[1]!),
    ],
    notes: [
      `${pages} frames / file slots per repeat. The file figures are the OS page cache's (a temporary file in ${tmpdir()}, never fsynced), not the disk's.`,
      'copy+hash is the bound of a whole-page write that must hash and copy; hash+compare that of a write finding its content already stored.',
      nativeNote,
    ],
    ...(unavailable === undefined ? {} : { details: { [NATIVE_UNAVAILABLE]: unavailable } }),
  };
}
