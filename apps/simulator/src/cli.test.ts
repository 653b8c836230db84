import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCENARIO } from '@pagevisor/workloads';
import { ExitCode, main, USAGE } from './cli.js';
import type { Report } from './report.js';

const tiny = {
  name: 'tiny',
  seed: 3,
  machine: { memoryMiB: 16 },
  durationS: 1,
  sampleIntervalS: 0.25,
  guests: [
    {
      name: 'vm',
      count: 2,
      memoryMiB: 4,
      image: { id: 'os', fraction: 0.7 },
      zeroFraction: 0.1,
      writeRatePagesPerS: 100,
      bootPagesPerS: 8192,
    },
  ],
};

let dir: string;
const file = (name: string): string => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pagevisor-cli-'));
  await writeFile(file('tiny.json'), JSON.stringify(tiny));
  // 2 x 4 MiB of guests on 6 MiB: fits only with dedup.
  await writeFile(file('tight.json'), JSON.stringify({ ...tiny, machine: { memoryMiB: 6 } }));
  await writeFile(file('bad.json'), JSON.stringify({ ...tiny, guests: [{ name: 'vm', memoryMiB: 0 }] }));
  await writeFile(file('broken.json'), '{ "name": ');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t), isTTY: false },
  });
  return { code, stdout, stderr };
}

function withoutWall(r: Report): string {
  const { wall: _wall, ...rest } = r;
  return JSON.stringify(rest);
}

describe('pagevisor run', () => {
  it('prints a summary with totals and one line per domain', async () => {
    const r = await cli('run', file('tiny.json'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toMatch(/scenario "tiny", seed 3/);
    expect(r.stdout).toMatch(/^guest pages\s+2048$/m);
    expect(r.stdout).toMatch(/^failed guests\s+0$/m);
    expect(r.stdout).toMatch(/^frames used\s+\d+ \(/m);
    expect(r.stdout).toMatch(/^saved\s+\d+\.\d\d%$/m);
    expect(r.stdout).toMatch(/^simulated time\s+1\.13 s$/m);
    expect(r.stdout).toMatch(/^\s*\d+\s+vm-0\s+1024\s/m);
    expect(r.stdout).toMatch(/^\s*\d+\s+vm-1\s+1024\s/m);
  });

  it('prints the JSON report with --json', async () => {
    const r = await cli('run', file('tiny.json'), '--json');
    expect(r.code).toBe(ExitCode.ok);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.totals.guestPages).toBe(2048);
    expect(report.totals.failedGuests).toBe(0);
    expect(report.config.machine.frames).toBe(4096);
    expect(report.domains.length).toBeGreaterThanOrEqual(2);
    expect(report.timeline.length).toBe(6);
  });

  it('writes the report to --out and still prints the summary', async () => {
    const out = file('report.json');
    const r = await cli('run', file('tiny.json'), '--out', out);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toMatch(/^guest pages\s+2048$/m);
    const report = JSON.parse(await readFile(out, 'utf8')) as Report;
    expect(report.scenario).toBe('tiny');
  });

  it('is deterministic for a seed; --seed changes the content, not the shape', async () => {
    const a = JSON.parse((await cli('run', file('tiny.json'), '--json')).stdout) as Report;
    const b = JSON.parse((await cli('run', file('tiny.json'), '--json')).stdout) as Report;
    expect(withoutWall(b)).toBe(withoutWall(a));
    const c = JSON.parse((await cli('run', file('tiny.json'), '--json', '--seed', '99')).stdout) as Report;
    expect(c.seed).toBe(99);
    expect(withoutWall(c)).not.toBe(withoutWall(a));
    expect(Object.keys(c.totals)).toEqual(Object.keys(a.totals));
    expect(c.totals.guestPages).toBe(a.totals.guestPages);
  });

  it('exits 2 with ENOMEM in failures when the guests do not fit without dedup', async () => {
    const ok = await cli('run', file('tight.json'));
    expect(ok.code).toBe(ExitCode.ok);
    const r = await cli('run', file('tight.json'), '--dedup', 'none', '--json');
    expect(r.code).toBe(ExitCode.guestFailed);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.config.dedup.strategy).toBe('none');
    expect(report.failures.map((f) => f.errno)).toContain('ENOMEM');
    const summary = await cli('run', file('tight.json'), '--dedup', 'none');
    expect(summary.code).toBe(ExitCode.guestFailed);
    expect(summary.stdout).toMatch(/guest\(s\) failed:\n {2}vm-\d \(dom \d+\) at [\d.]+ s: populate_physmap: ENOMEM/);
  });

  it('refuses an invalid scenario, naming the field, without running it', async () => {
    const r = await cli('run', file('bad.json'), '--out', file('never.json'));
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('guests[0].memoryMiB: must be a positive integer');
    await expect(readFile(file('never.json'))).rejects.toThrow();
  });

  it('refuses unreadable and non-JSON files', async () => {
    const missing = await cli('run', file('missing.json'));
    expect(missing.code).toBe(ExitCode.usage);
    expect(missing.stderr).toMatch(/cannot read scenario file .*missing\.json/);
    const broken = await cli('run', file('broken.json'));
    expect(broken.code).toBe(ExitCode.usage);
    expect(broken.stderr).toMatch(/broken\.json is not valid JSON/);
  });

  it('refuses unknown flags and bad option values', async () => {
    const unknown = await cli('run', '--turbo');
    expect(unknown.code).toBe(ExitCode.usage);
    expect(unknown.stderr).toMatch(/Unknown option '--turbo'/);
    expect(unknown.stdout).toBe('');
    expect((await cli('run', file('tiny.json'), '--seed', 'abc')).stderr).toMatch(/--seed: must be an integer from 0 to 4294967295, got "abc"/);
    expect((await cli('run', file('tiny.json'), '--seed', '4294967296')).code).toBe(ExitCode.usage);
    const dedup = await cli('run', file('tiny.json'), '--dedup', 'ksm');
    expect(dedup.code).toBe(ExitCode.usage);
    expect(dedup.stderr).toMatch(/--dedup: must be inline or none, got "ksm"/);
    expect((await cli('run', 'a.json', 'b.json')).code).toBe(ExitCode.usage);
  });
});

describe('pagevisor other commands', () => {
  it('prints the default scenario as JSON that parses back', async () => {
    const r = await cli('default-scenario');
    expect(r.code).toBe(ExitCode.ok);
    expect(JSON.parse(r.stdout)).toEqual(DEFAULT_SCENARIO);
  });

  it('prints help, and refuses no command, unknown commands and misplaced options', async () => {
    expect(await cli('--help')).toEqual({ code: 0, stdout: USAGE, stderr: '' });
    expect((await cli()).code).toBe(ExitCode.usage);
    const unknown = await cli('fly');
    expect(unknown.code).toBe(ExitCode.usage);
    expect(unknown.stderr).toMatch(/unknown command "fly"/);
    expect((await cli('default-scenario', '--json')).stderr).toMatch(/--json applies to "run" only/);
  });
});
