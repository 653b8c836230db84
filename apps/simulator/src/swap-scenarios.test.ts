import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScenario, type Scenario, type ScenarioInput } from '@pagevisor/workloads';
import { ExitCode, main } from './cli.js';
import type { Report } from './report.js';
import { runScenario } from './run-scenario.js';
import { formatSummary } from './summary.js';

let overcommit: ScenarioInput;
let dir: string;

beforeAll(async () => {
  overcommit = JSON.parse(await readFile(new URL('../scenarios/overcommit.json', import.meta.url), 'utf8')) as ScenarioInput;
  dir = await mkdtemp(join(tmpdir(), 'pagevisor-swap-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The overcommit scenario with `swap` merged into its swap and `durationS` s of steady state (two windows of the working sets). */
function variant(swap: Record<string, unknown>, durationS = 2): Scenario {
  return parseScenario({ ...overcommit, durationS, machine: { ...overcommit.machine, swap: { ...overcommit.machine.swap, ...swap } } });
}

function withoutWall(r: Report): string {
  const { wall: _wall, ...rest } = r;
  return JSON.stringify(rest);
}

function expectCompleted(r: Report): void {
  expect(r.failures).toEqual([]);
  expect(r.guests.every((g) => g.state === 'done')).toBe(true);
  expect(r.swap!.swapOuts).toBeGreaterThan(0);
  expect(r.swap!.swapIns).toBeGreaterThan(0);
}

describe('overcommit.json: guests at 3x RAM with a shared swap area', () => {
  it('asks for at least 3x RAM, partly identical guests, moving working sets and a shared area compared against per-domain', () => {
    const s = parseScenario(overcommit);
    const guestMiB = s.guests.reduce((n, g) => n + g.count * g.memoryMiB, 0);
    expect(guestMiB).toBeGreaterThanOrEqual(3 * s.machine.memoryMiB);
    expect(s.guests.every((g) => g.image.fraction > 0 && g.workingSet !== undefined)).toBe(true);
    expect(s.machine.swap).toMatchObject({ mode: 'shared', compareBaseline: true });
  });

  it('runs to completion; identical pages make the shared area smaller than the per-domain areas together', async () => {
    const r = await runScenario(parseScenario(overcommit));
    expectCompleted(r);
    const w = r.swap!;
    expect(w).toMatchObject({ mode: 'shared', device: 'memory', compression: 'none', policy: 'clock', pauses: [], evictionFailures: 0, swapInFailures: 0 });
    expect(w.swapDiskBytesShared).toBeGreaterThan(0);
    expect(w.swapDiskBytesPerDomain).toBeGreaterThan(w.swapDiskBytesShared!);
    expect(w.swapBytesWritten).toBeGreaterThanOrEqual(w.swapDiskBytesShared!);
    expect(w.swapSlotsUsed * 4096).toBeLessThanOrEqual(w.swapDiskBytesShared!);
    expect(w.compressionRatio).toBe(1);
    // Guest pages beyond RAM live in swap: RAM holds at most its frames.
    expect(r.totals.pagedPages).toBeGreaterThan(0);
    expect(r.totals.pagedPages).toBe(r.domains.reduce((n, d) => n + d.pagedPages, 0));
    expect(r.totals.guestPages).toBe(6 * 4096);
    // Three times RAM: at the peak, pages as many as half the machine's frames are out on swap
    // (fewer than the frames: what sharing keeps in RAM stays there).
    expect(Math.max(...r.timeline.map((t) => t.pagedPages))).toBeGreaterThan(r.config.machine.frames / 2);
    expect(r.config.machine.swap).toMatchObject({ mode: 'shared', compareBaseline: true });
    expect(r.guests.every((g) => g.reads! > 0)).toBe(true);
    const summary = formatSummary(r);
    for (const line of ['swap outs / ins', 'swap disk shared', 'swap disk per-domain', 'paged pages', 'slots saved by dedup']) expect(summary).toContain(line);
  });

  it('reports per-domain mode on its own, the shared peak null without compareBaseline', async () => {
    const r = await runScenario(variant({ mode: 'per-domain', compareBaseline: false }));
    expectCompleted(r);
    expect(r.swap!.swapDiskBytesShared).toBeNull();
    expect(r.swap!.swapDiskBytesPerDomain).toBeGreaterThan(0);
    expect(r.swap!.slotsSavedByDedup).toBe(0);
  });

  for (const policy of ['clock', 'lru', 'random'] as const) {
    for (const device of ['memory', 'file'] as const) {
      it(`completes with ${policy} eviction on the ${device} device`, async () => {
        const r = await runScenario(variant({ policy, device, compareBaseline: false }));
        expectCompleted(r);
        expect(r.swap).toMatchObject({ policy, device, swapDiskBytesPerDomain: null });
      });
    }
  }

  for (const compression of ['deflate', 'lz4'] as const) {
    it(`completes with ${compression} compression`, async () => {
      const r = await runScenario(variant({ compression, compareBaseline: false }));
      expectCompleted(r);
      expect(r.swap!.compression).toBe(compression);
      expect(r.swap!.compressionRatio).toBeGreaterThanOrEqual(1);
    });
  }

  it('with injected read and write errors: guests pause and go on, none fails, the audit is clean', async () => {
    const faults = { seed: 1, writeErrorProbability: 0.05, readErrorProbability: 0.02 };
    const r = await runScenario(variant({ faults, compareBaseline: false }));
    expect(r.failures).toEqual([]);
    expect(r.guests.every((g) => g.state === 'done')).toBe(true);
    const w = r.swap!;
    expect(w.pauses.length).toBeGreaterThan(0);
    expect(w.swapInFailures).toBeGreaterThan(0);
    expect(w.evictionFailures).toBeGreaterThan(0);
    for (const p of w.pauses) {
      expect(p).toEqual({ guest: expect.stringMatching(/^vm-\d$/), domId: expect.any(Number), op: expect.any(String), errno: expect.stringMatching(/^(EIO|EAGAIN)$/), message: expect.any(String), atNs: expect.any(Number) });
    }
    expect(r.guests.reduce((n, g) => n + (g.pauses ?? 0), 0)).toBe(w.pauses.length);
    expect(formatSummary(r)).toContain(`${w.pauses.length} guest pauses`);
  });

  it('with faults on per-domain file areas too', async () => {
    const r = await runScenario(variant({ mode: 'per-domain', device: 'file', faults: { seed: 2, readErrorProbability: 0.05, shortWriteProbability: 0.05 }, compareBaseline: false }));
    expect(r.failures).toEqual([]);
    expect(r.swap!.pauses.length).toBeGreaterThan(0);
    expect(r.swap!.evictionFailures).toBeGreaterThan(0);
    expect(r.swap!.swapIns).toBeGreaterThan(0);
  });

  it('gives a byte-identical report (outside wall) for the same seed, on a file, without the file path; removes its temporary file', async () => {
    const before = readdirSync(tmpdir()).filter((f) => f.startsWith('pagevisor-swap-')).length;
    const path = join(dir, 'area.swap');
    const a = await runScenario(variant({ device: 'file', faults: { seed: 4, readErrorProbability: 0.02 } }));
    const b = await runScenario(variant({ device: 'file', path, faults: { seed: 4, readErrorProbability: 0.02 } }));
    expect(withoutWall(a)).toBe(withoutWall(b));
    expect(withoutWall(b)).not.toContain(dir);
    expect(existsSync(path)).toBe(true); // a path of your own stays
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith('pagevisor-swap-')).length).toBe(before);
    const c = await runScenario({ ...variant({ device: 'file', faults: { seed: 4, readErrorProbability: 0.02 } }), seed: 2 });
    expect(withoutWall(c)).not.toBe(withoutWall(a));
  });
});

describe('CLI swap flags', () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) } } };
  };
  const file = new URL('../scenarios/overcommit.json', import.meta.url).pathname;

  it('--swap-policy, --swap-device and --compression override the scenario', async () => {
    const x = io();
    const code = await main(['run', file, '--json', '--swap-policy', 'lru', '--swap-device', 'file', '--compression', 'lz4'], x.io);
    expect(code).toBe(ExitCode.ok);
    const r = JSON.parse(x.out.join('')) as Report;
    expect(r.swap).toMatchObject({ policy: 'lru', device: 'file', compression: 'lz4' });
  });

  it('refuses bad values and swap flags outside run', async () => {
    const refusals = [
      ['--swap-policy', 'fifo', 'plugin fifo: not a built-in eviction-policy plugin (clock, lru, random)'],
      ['--swap-device', 'tape', 'plugin tape: not a built-in swap-device plugin (memory, file)'],
      ['--compression', 'zstd', "option '--compression <codec>' argument 'zstd' is invalid. Allowed choices are none, deflate, lz4."],
    ] as const;
    for (const [flag, value, message] of refusals) {
      const x = io();
      expect(await main(['run', file, flag, value], x.io)).toBe(ExitCode.usage);
      expect(x.err.join('')).toContain(message);
    }
    const x = io();
    expect(await main(['default-scenario', '--compression', 'lz4'], x.io)).toBe(ExitCode.usage);
  });
});
