import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBench } from './run-bench.js';
import type { BenchResult } from './result.js';
import { boundsNote } from './suites/micro.js';

// A machine without a C compiler: no `cc` on the PATH, and an empty temporary directory (the
// reference's binary is cached there once built). Not timed assertions: what the run reports.
describe('a run without the C reference', () => {
  const saved = { PATH: process.env['PATH'], TMPDIR: process.env['TMPDIR'] };
  const dir = mkdtempSync(join(tmpdir(), 'bench-no-cc-'));
  let result: BenchResult;

  beforeAll(async () => {
    process.env['PATH'] = join(dir, 'no-bin');
    process.env['TMPDIR'] = dir;
    try {
      result = await runBench({ suites: ['micro'], quick: true, repeats: 1, isolate: false });
    } finally {
      process.env['PATH'] = saved.PATH;
      process.env['TMPDIR'] = saved.TMPDIR;
    }
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('measures everything else, with the JavaScript ratios only', () => {
    expect(result.errors).toEqual([]);
    expect(result.measurements.filter((m) => m.id.startsWith('limits.native.'))).toEqual([]);
    expect(result.measurements.filter((m) => m.native !== undefined).map((m) => m.id)).toEqual([]);
    const write = result.measurements.find((m) => m.id === 'micro.hypervisor.write-nodedup')!;
    expect(write.limit).toMatchObject({ id: 'limits.machine.copy', name: 'copy' });
  });

  it('says why in the notes, and leaves the native targets unmeasured with the reason', () => {
    const notes = (suite: string): string => result.suites.find((s) => s.suite === suite)!.notes.join('\n');
    expect(notes('limits')).toMatch(/native: not measured: no C compiler/);
    expect(notes('micro')).toMatch(/no native ratios in this run: the C reference was not measured \(no C compiler: .+\)/);
    for (const key of ['inline-write-new', 'inline-write-stored']) {
      expect(result.targets.find((t) => t.key === key)).toMatchObject({ value: null, met: null, note: expect.stringMatching(/^not measured: no native bound \(no C compiler: /) });
    }
  });
});

describe('boundsNote', () => {
  it('names the two bounds, and why there is no native one when there is none', () => {
    expect(boundsNote({ limits: new Map([['limits.native.copy', {} as never]]) })).toMatch(/^ratios: first to the JavaScript bound .*then to the native bound .*\.$/);
    expect(boundsNote({ limits: new Map([['limits.machine.copy', {} as never]]), nativeUnavailable: 'no C compiler: x' })).toMatch(/no native ratios in this run: the C reference was not measured \(no C compiler: x\)\.$/);
    expect(boundsNote({ limits: new Map() })).toMatch(/\(the limits suite did not run\)\.$/);
  });
});
