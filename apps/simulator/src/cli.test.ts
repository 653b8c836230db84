import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCENARIO, generateTrace } from '@pagevisor/workloads';
import { ExitCode, main, type CliRunHooks } from './cli.js';
import type { Report } from './report.js';
import { VERSION } from './version.js';

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
  const idle = { name: 'vm', count: 2, memoryMiB: 1, zeroFraction: 1 };
  await writeFile(
    file('steps.json'),
    JSON.stringify({
      name: 'steps',
      machine: { memoryMiB: 8 },
      durationS: 0,
      guests: [idle],
      steps: [
        { op: 'fill', guest: 'vm-0', gfn: 0, count: 4, pattern: 7 },
        { op: 'checkpoint', label: 'filled' },
        { op: 'set', knob: 'run', value: 1 },
      ],
    }),
  );
  await writeFile(
    file('failing-step.json'),
    JSON.stringify({
      name: 'failing',
      machine: { memoryMiB: 8 },
      durationS: 0,
      guests: [idle],
      steps: [{ op: 'checkpoint', label: 'a' }, { op: 'set', knob: 'run', value: 1, expect: 'EBUSY' }, { op: 'checkpoint', label: 'b' }],
    }),
  );
  await writeFile(
    file('scans.json'),
    JSON.stringify({ name: 'scans', machine: { memoryMiB: 8 }, guests: [idle], steps: [{ op: 'wait_full_scans', count: 2 }] }),
  );
  await writeFile(
    file('bad-option.json'),
    JSON.stringify({ name: 'opt', machine: { memoryMiB: 8 }, dedup: { strategy: 'inline', initialCapacity: 3 }, guests: [idle] }),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the CLI on buffers; `stdin` is what `-` reads, `hooks` reach the run's hypervisor. */
async function cliWith(argv: string[], { stdin, hooks }: { stdin?: string; hooks?: CliRunHooks } = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(
    argv,
    {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t), isTTY: false },
      ...(stdin === undefined ? {} : { stdin: [stdin] }),
    },
    hooks,
  );
  return { code, stdout, stderr };
}

const cli = (...argv: string[]) => cliWith(argv);

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
    expect(r.stdout).toMatch(/^guest pages\s+2,048$/m);
    expect(r.stdout).toMatch(/^failed guests\s+0$/m);
    expect(r.stdout).toMatch(/^frames used\s+[\d,]+ \(/m);
    expect(r.stdout).toMatch(/^saved\s+\d+\.\d\d%$/m);
    expect(r.stdout).toMatch(/^simulated time\s+1\.13 s$/m);
    expect(r.stdout).toMatch(/^\s*\d+\s+vm-0\s+1,024\s/m);
    expect(r.stdout).toMatch(/^\s*\d+\s+vm-1\s+1,024\s/m);
  });

  it('writes every count with thousands separators, as replay does', async () => {
    const r = await cli('run', file('tiny.json'));
    expect(r.stdout).toMatch(/^machine 16 MiB \(4,096 frames\)/m);
    expect(r.stdout).toMatch(/ [\d,]+ guest pages\/s,/);
    // No count of four digits or more without its separator (the seed is a name, not a count).
    expect(r.stdout.replace(/seed \d+/, '')).not.toMatch(/\d{4}/);
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
    expect(r.stdout).toMatch(/^guest pages\s+2,048$/m);
    const report = JSON.parse(await readFile(out, 'utf8')) as Report;
    expect(report.scenario).toBe('tiny');
  });

  it('writes the HTML report to --html and the time series to --csv', async () => {
    const html = file('report.html');
    const csv = file('csv');
    const r = await cli('run', file('tiny.json'), '--html', html, '--csv', csv, '--quiet');
    expect(r.code).toBe(ExitCode.ok);
    const page = await readFile(html, 'utf8');
    expect(page).toMatch(/^<!DOCTYPE html>/i);
    expect(page).toContain('tiny');
    expect((await readFile(join(csv, 'timeline.csv'), 'utf8')).split('\r\n').filter((l) => l !== '').length).toBe(7);
    expect(await readFile(join(csv, 'domains.csv'), 'utf8')).toMatch(/vm-0/);
    expect((await cli('run', '--csv', '')).stderr).toMatch(/--csv: needs a directory name/);
  });

  it('replays a trace: totals and peak RSS; a refused event exits 2; a corrupt trace is refused naming the byte', async () => {
    const trace = file('small.pvtrace');
    generateTrace(trace, { events: 2000, domains: 2, pagesPerDomain: 256, seed: 5 });
    const r = await cli('replay', trace, '--json');
    expect(r.code).toBe(ExitCode.ok);
    const report = JSON.parse(r.stdout) as { events: number; totals: { machineFramesUsed: number }; memory: { peakRssBytes: number } };
    expect(report.events).toBe(2000);
    expect(report.totals.machineFramesUsed).toBeGreaterThan(1);
    expect(report.memory.peakRssBytes).toBeGreaterThan(0);
    expect((await cli('replay', trace, '--memory-mib', '1', '--dedup', 'none')).code).toBe(ExitCode.guestFailed);
    await writeFile(file('cut.pvtrace'), (await readFile(trace)).subarray(0, 100));
    const cut = await cli('replay', file('cut.pvtrace'));
    expect(cut.code).toBe(ExitCode.usage);
    expect(cut.stderr).toMatch(/trace .*cut\.pvtrace: .*byte \d+/);
    expect((await cli('run', '--memory-mib', '4')).stderr).toMatch(/unknown option '--memory-mib'/);
  });

  it('boots a guest from an image file named relative to the scenario, and refuses a truncated one before running', async () => {
    const page = new Uint8Array(4096).fill(7);
    await writeFile(file('two.raw'), Buffer.concat([page, page]));
    await writeFile(file('cut.raw'), page.subarray(0, 100));
    const guest = { name: 'img', memoryMiB: 1, image: { path: 'two.raw', format: 'raw' }, writeRatePagesPerS: 0 };
    await writeFile(file('image.json'), JSON.stringify({ ...tiny, guests: [guest] }));
    await writeFile(file('image-cut.json'), JSON.stringify({ ...tiny, guests: [{ ...guest, image: { path: 'cut.raw', format: 'raw' } }] }));
    const ok = await cli('run', file('image.json'), '--json');
    expect(ok.code).toBe(ExitCode.ok);
    const bad = await cli('run', file('image-cut.json'));
    expect(bad.code).toBe(ExitCode.usage);
    expect(bad.stderr).toMatch(/guests\[0\]\.image\.path: .*cut\.raw/);
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
    expect(missing.stderr).toMatch(/cannot read scenario .*missing\.json/);
    const broken = await cli('run', file('broken.json'));
    expect(broken.code).toBe(ExitCode.usage);
    expect(broken.stderr).toMatch(/scenario .*broken\.json is not valid JSON/);
  });

  it('refuses unknown flags and bad option values', async () => {
    const unknown = await cli('run', '--turbo');
    expect(unknown.code).toBe(ExitCode.usage);
    expect(unknown.stderr).toMatch(/^pagevisor: unknown option '--turbo'\nRun "pagevisor run --help" for usage\.$/m);
    expect(unknown.stdout).toBe('');
    expect((await cli('run', file('tiny.json'), '--seed', 'abc')).stderr).toMatch(/option '--seed <n>' argument 'abc' is invalid\. It must be an integer from 0 to 4,294,967,295\./);
    expect((await cli('run', file('tiny.json'), '--seed', '4294967296')).code).toBe(ExitCode.usage);
    const dedup = await cli('run', file('tiny.json'), '--dedup', 'zfs');
    expect(dedup.code).toBe(ExitCode.usage);
    expect(dedup.stderr).toMatch(/plugin zfs: not a built-in dedup plugin \(inline, ksm, esx, none\), and no package zfs is installed/);
    expect((await cli('run', 'a.json', 'b.json')).code).toBe(ExitCode.usage);
  });
});

describe('pagevisor run with steps and strategies', () => {
  it('shows the strategy, its convergence, simulated CPU and the steps in the summary', async () => {
    const r = await cli('run', file('steps.json'));
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toMatch(/^dedup strategy\s+inline$/m);
    expect(r.stdout).toMatch(/^converged at\s+\d+\.\d\d s$/m);
    expect(r.stdout).toMatch(/^cpu guests\s+[\d.]+ (µs|ms|s)$/m);
    expect(r.stdout).toMatch(/^cpu dedup\s+0\.00 µs$/m);
    expect(r.stdout).toMatch(/^steps\s+3 of 3 run, 1 refused, 0 failed$/m);
    expect(r.stdout).toMatch(/^checkpoints\s+filled$/m);
    // Inline keeps no KSM counters.
    expect(r.stdout).not.toMatch(/full_scans/);
    const report = JSON.parse((await cli('run', file('steps.json'), '--json')).stdout) as Report;
    expect(report.steps.map((s) => s.op)).toEqual(['fill', 'checkpoint', 'set']);
    expect(report.checkpoints[0]!.totals.pagesSharing).toBe(3);
    expect(Object.keys(report.dedup)).toEqual(['strategy', 'convergedAtNs', 'stats', 'knobs']);
    expect(Object.keys(report.cpu)).toEqual(['guestNs', 'dedupNs', 'totalNs']);
  });

  it('exits 2 when a step fails its expect, naming it in the summary', async () => {
    const r = await cli('run', file('failing-step.json'));
    expect(r.code).toBe(ExitCode.guestFailed);
    expect(r.stdout).toMatch(/^steps\s+2 of 3 run, 1 refused, 1 failed$/m);
    expect(r.stdout).toMatch(/step 1 \(set\) failed at 0\.00 s: set_knob: EOPNOTSUPP: .* \(expected EBUSY\)/);
  });

  it('refuses, without running, wait_full_scans under a strategy without full scans and options the strategy refuses', async () => {
    const scans = await cli('run', file('scans.json'), '--out', file('never2.json'));
    expect(scans.code).toBe(ExitCode.usage);
    expect(scans.stdout).toBe('');
    expect(scans.stderr).toMatch(/invalid scenario .*scans\.json:\n {2}steps\[0\]\.op: wait_full_scans needs a strategy that counts full_scans; "inline" does not/);
    await expect(readFile(file('never2.json'))).rejects.toThrow();
    const opt = await cli('run', file('bad-option.json'));
    expect(opt.code).toBe(ExitCode.usage);
    expect(opt.stderr).toMatch(/plugin inline: options refused: initialCapacity must be a power of two/);
    // --dedup with another strategy drops the options written for the scenario's.
    const none = await cli('run', file('bad-option.json'), '--dedup', 'none', '--json');
    expect(none.code).toBe(ExitCode.ok);
    expect((JSON.parse(none.stdout) as Report).config.dedup).toEqual({ strategy: 'none' });
  });
});

describe('pagevisor run with scanning strategies', () => {
  const scenarios = new URL('../scenarios/', import.meta.url).pathname;

  it('runs a KSM scenario file and shows KSM\'s counters in the summary', async () => {
    const r = await cli('run', join(scenarios, 'ksm-merge.json'));
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toMatch(/^dedup strategy\s+ksm$/m);
    expect(r.stdout).toMatch(/^pages_shared\s+\d+$/m);
    expect(r.stdout).toMatch(/^pages_sharing\s+\d+$/m);
    expect(r.stdout).toMatch(/^full_scans\s+\d+$/m);
    expect(r.stdout).toMatch(/^cpu dedup\s+[\d.]+ (µs|ms|s)$/m);
  });

  it('switches any scenario to ksm or esx with --dedup', async () => {
    for (const strategy of ['ksm', 'esx']) {
      const r = await cli('run', file('tiny.json'), '--dedup', strategy, '--json');
      expect(r.code).toBe(ExitCode.ok);
      const report = JSON.parse(r.stdout) as Report;
      expect(report.dedup.strategy).toBe(strategy);
      expect(report.config.dedup).toEqual({ strategy });
      expect(report.totals.guestPages).toBe(2048);
      expect(report.cpu.dedupNs).toBeGreaterThan(0);
    }
  });

  it('refuses a KSM option KSM refuses, naming it', async () => {
    await writeFile(
      file('ksm-bad.json'),
      JSON.stringify({ ...tiny, dedup: { strategy: 'ksm', pages_to_scan: 100, sleep_milisecs: 5 } }),
    );
    const r = await cli('run', file('ksm-bad.json'));
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toMatch(/^pagevisor: plugin ksm: options refused: ksm has no option "sleep_milisecs"/m);
  });
});

describe('pagevisor other commands', () => {
  it('prints the default scenario as JSON that parses back', async () => {
    const r = await cli('default-scenario');
    expect(r.code).toBe(ExitCode.ok);
    expect(JSON.parse(r.stdout)).toEqual(DEFAULT_SCENARIO);
  });

  it('refuses no command (printing the overview), unknown commands and options of another command', async () => {
    const none = await cli();
    expect(none.code).toBe(ExitCode.usage);
    expect(none.stderr).toMatch(/^Usage: pagevisor \[options\] \[command\]/);
    const unknown = await cli('fly');
    expect(unknown.code).toBe(ExitCode.usage);
    expect(unknown.stderr).toMatch(/^pagevisor: unknown command 'fly'$/m);
    const misplaced = await cli('default-scenario', '--json');
    expect(misplaced.code).toBe(ExitCode.usage);
    expect(misplaced.stderr).toMatch(/unknown option '--json'\nRun "pagevisor default-scenario --help" for usage/);
  });
});

describe('pagevisor run with plugins', () => {
  // Self-contained plugins (a temporary directory has no node_modules): a strategy that indexes
  // nothing, and a FIFO eviction policy.
  const NOTHING = `export default {
  kind: 'dedup', name: 'nothing',
  options: (o) => { for (const k of Object.keys(o)) if (k !== 'label') throw new Error('unknown option ' + k); return o; },
  create: () => ({ name: 'nothing', inline: false, populateZero: false, size: 0, attach() {}, lookup: () => -1, insert() {}, remove() {},
    contains: () => false, metadataBytes: () => 0, stats: () => ({ calls: 0 }), audit: () => [] }),
};`;
  const FIFO = `export default {
  kind: 'eviction-policy', name: 'fifo',
  create: (_options, context) => {
    const queue = []; const held = new Uint8Array(context.frames); let head = 0; let size = 0;
    return {
      name: 'fifo', get size() { return size; },
      insert(mfn) { if (!held[mfn]) { held[mfn] = 1; queue.push(mfn); size++; } },
      remove(mfn) { if (held[mfn]) { held[mfn] = 0; size--; } },
      touch(mfn) { this.insert(mfn); },
      victim() { while (head < queue.length) { const m = queue[head++]; if (held[m]) { held[m] = 0; size--; return m; } } return -1; },
      reset() { queue.length = 0; head = 0; size = 0; held.fill(0); },
    };
  },
};`;

  it('loads a strategy and an eviction policy named by path in the scenario, and the report names them', async () => {
    await writeFile(file('nothing.mjs'), NOTHING);
    await writeFile(file('fifo.mjs'), FIFO);
    const over = JSON.parse(await readFile(new URL('../scenarios/overcommit.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    const machine = over['machine'] as Record<string, unknown>;
    await writeFile(
      file('with-plugins.json'),
      JSON.stringify({ ...over, durationS: 1, dedup: { strategy: './nothing.mjs', label: 'x' }, machine: { ...machine, swap: { ...(machine['swap'] as object), policy: './fifo.mjs', compareBaseline: false } } }),
    );
    const r = await cli('run', file('with-plugins.json'), '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.dedup).toMatchObject({ strategy: 'nothing', plugins: { strategy: './nothing.mjs' } });
    expect(report.swap).toMatchObject({ policy: 'fifo', plugins: { policy: './fifo.mjs' } });
    expect(report.swap!.swapOuts).toBeGreaterThan(0);
    // --dedup names a plugin from the working directory.
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const viaFlag = await cli('run', file('tiny.json'), '--dedup', './nothing.mjs', '--json');
      expect(viaFlag.code).toBe(ExitCode.ok);
      expect((JSON.parse(viaFlag.stdout) as Report).dedup.plugins).toEqual({ strategy: join(dir, 'nothing.mjs') });
    } finally {
      process.chdir(cwd);
    }
  });

  it('refuses a plugin that cannot be used with exit 1, naming it and why, before anything runs', async () => {
    await writeFile(file('throws.mjs'), `export default { kind: 'dedup', name: 'throws', create() { throw new Error('no frames for my index'); } };`);
    await writeFile(file('not-a-plugin.mjs'), `export default 42;`);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ strategy: './throws.mjs' }, /^pagevisor: plugin \.\/throws\.mjs: create threw: no frames for my index$/m],
      [{ strategy: './not-a-plugin.mjs' }, /^pagevisor: plugin \.\/not-a-plugin\.mjs: its default export is number, not a plugin object/m],
      [{ strategy: './nothing.mjs', colour: 'red' }, /^pagevisor: plugin \.\/nothing\.mjs: options refused: unknown option colour$/m],
      [{ strategy: './missing.mjs' }, /^pagevisor: plugin \.\/missing\.mjs: no file /m],
    ];
    for (const [dedup, message] of cases) {
      await writeFile(file('bad-plugin.json'), JSON.stringify({ ...tiny, dedup }));
      const r = await cli('run', file('bad-plugin.json'), '--out', file('never.json'));
      expect(r.code, JSON.stringify(dedup)).toBe(ExitCode.usage);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
      await expect(readFile(file('never.json'))).rejects.toThrow();
    }
  });
});

describe('pagevisor help and version', () => {
  it('prints the overview on --help, -h and help, listing every command', async () => {
    const overview = await cli('--help');
    expect(overview.code).toBe(ExitCode.ok);
    expect(overview.stderr).toBe('');
    expect(overview.stdout).toMatch(/^Usage: pagevisor \[options\] \[command\]\n/);
    for (const command of ['run [options] [scenario]', 'replay [options] <trace>', 'attack [options]', 'ksm-diff [options] <scenario>', 'default-scenario', 'help [command]']) {
      expect(overview.stdout).toContain(`\n  ${command} `);
    }
    expect(overview.stdout).toMatch(/^Exit codes: 0 ok; 1 bad usage/m);
    // The overview lists commands, not the options of each.
    expect(overview.stdout).not.toContain('--swap-policy');
    expect(await cli('-h')).toEqual(overview);
    expect(await cli('help')).toEqual(overview);
  });

  it("prints a command's own usage and options on COMMAND --help and help COMMAND", async () => {
    const run = await cli('run', '--help');
    expect(run.code).toBe(ExitCode.ok);
    expect(run.stdout).toMatch(/^Usage: pagevisor run \[options\] \[scenario\]\n/);
    for (const option of ['--json', '--out <file>', '--html <file>', '--csv <dir>', '--seed <n>', '--dedup <strategy>', '--swap-policy <policy>', '--swap-device <device>', '--compression <codec>', '--verify', '-q, --quiet']) {
      expect(run.stdout).toContain(`\n  ${option} `);
    }
    expect(run.stdout).not.toContain('Commands:');
    expect(run.stdout).not.toContain('--trials');
    expect(await cli('help', 'run')).toEqual(run);
    for (const [command, own, other] of [
      ['replay', '--memory-mib <n>', '--verify'],
      ['attack', '--trials <n>', '--memory-mib'],
      ['ksm-diff', '<scenario>', '--seed'],
      ['default-scenario', 'as JSON', '--json'],
    ] as const) {
      const help = await cli(command, '--help');
      expect(help.stdout).toMatch(new RegExp(`^Usage: pagevisor ${command} `));
      expect(help.stdout).toContain(own);
      expect(help.stdout).not.toContain(other);
      expect(await cli('help', command)).toEqual(help);
    }
  });

  it('prints the version on -V and --version', async () => {
    expect(await cli('-V')).toEqual({ code: ExitCode.ok, stdout: `${VERSION}\n`, stderr: '' });
    expect(await cli('--version')).toEqual({ code: ExitCode.ok, stdout: `${VERSION}\n`, stderr: '' });
  });

  it("matches the README's usage blocks", async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(`\`\`\`\n${(await cli('--help')).stdout}\`\`\``);
    expect(readme).toContain(`\`\`\`\n${(await cli('run', '--help')).stdout}\`\`\``);
  });
});

describe('pagevisor run --audit', () => {
  it('audits on a sample by default and in full when asked; the report is the same either way', async () => {
    const sampled = await cli('run', file('tiny.json'), '--json');
    const full = await cli('run', file('tiny.json'), '--json', '--audit', 'full');
    expect([sampled.code, full.code]).toEqual([ExitCode.ok, ExitCode.ok]);
    const figures = (text: string): unknown => {
      const { wall: _wall, ...rest } = JSON.parse(text) as { wall: unknown };
      return rest;
    };
    expect(figures(full.stdout)).toEqual(figures(sampled.stdout));
    const bad = await cli('run', file('tiny.json'), '--audit', 'half');
    expect([bad.code, bad.stderr]).toEqual([ExitCode.usage, expect.stringMatching(/option '--audit <depth>' argument 'half' is invalid\. Allowed choices are sample, full/)]);
  });
});

describe('pagevisor mistakes', () => {
  it('suggests the command meant for a mistyped one, and the option for a mistyped flag', async () => {
    const command = await cli('rn', file('tiny.json'));
    expect(command.code).toBe(ExitCode.usage);
    expect(command.stdout).toBe('');
    expect(command.stderr).toMatch(/^pagevisor: unknown command 'rn'\n\(Did you mean run\?\)\n/);
    const flag = await cli('run', file('tiny.json'), '--jsn');
    expect(flag.code).toBe(ExitCode.usage);
    expect(flag.stdout).toBe('');
    expect(flag.stderr).toMatch(/^pagevisor: unknown option '--jsn'\n\(Did you mean --json\?\)\n/);
    expect((await cli('replay', 'x.pvtrace', '--setle-ms', '5')).stderr).toMatch(/unknown option '--setle-ms'\n\(Did you mean --settle-ms\?\)/);
  });

  it('refuses a negative or odd number naming the option and the range it takes', async () => {
    for (const argv of [
      ['--seed', '-1'],
      ['--seed=-1'],
      ['--seed', '1.5'],
      ['--seed', '0x10'],
    ]) {
      const r = await cli('run', file('tiny.json'), ...argv);
      expect(r.code, argv.join(' ')).toBe(ExitCode.usage);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^pagevisor: option '--seed <n>' argument '.+' is invalid\. It must be an integer from 0 to 4,294,967,295\.$/m);
      expect(r.stderr).not.toMatch(/ambiguous/);
    }
    const cases = [
      [['replay', 'x.pvtrace', '--memory-mib', '0'], /option '--memory-mib <n>' argument '0' is invalid\. It must be an integer from 1 to 1,048,576\./],
      [['replay', 'x.pvtrace', '--settle-ms', '-5'], /option '--settle-ms <ms>' argument '-5' is invalid\. It must be an integer from 0 to 3,600,000\./],
      [['attack', '--trials', '-3'], /option '--trials <n>' argument '-3' is invalid\. It must be an integer from 1 to 1,000,000\./],
    ] as const;
    for (const [argv, message] of cases) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(ExitCode.usage);
      expect(r.stderr).toMatch(message);
    }
  });
});

describe('pagevisor run - and ksm-diff - (the scenario on stdin)', () => {
  it('runs the scenario read from stdin as it runs the file', async () => {
    const fromFile = JSON.parse((await cli('run', file('tiny.json'), '--json')).stdout) as Report;
    const r = await cliWith(['run', '-', '--json'], { stdin: JSON.stringify(tiny) });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(withoutWall(JSON.parse(r.stdout) as Report)).toBe(withoutWall(fromFile));
  });

  it('names stdin in what it refuses', async () => {
    const broken = await cliWith(['run', '-'], { stdin: '{ "name": ' });
    expect(broken.code).toBe(ExitCode.usage);
    expect(broken.stderr).toMatch(/^pagevisor: scenario \(stdin\) is not valid JSON/m);
    const bad = await cliWith(['run', '-'], { stdin: JSON.stringify({ ...tiny, guests: [{ name: 'vm', memoryMiB: 0 }] }) });
    expect(bad.stderr).toMatch(/^pagevisor: invalid scenario \(stdin\):\n {2}guests\[0\]\.memoryMiB: must be a positive integer/m);
    // ksm-diff reads it too, and refuses a scenario with writing guests before looking at the host.
    const diff = await cliWith(['ksm-diff', '-'], { stdin: JSON.stringify({ ...tiny, dedup: { strategy: 'ksm' } }) });
    expect(diff.code).toBe(ExitCode.usage);
    expect(diff.stderr).toMatch(/^pagevisor: \(stdin\): /m);
  });
});

describe('pagevisor run output paths', () => {
  /** Runs with a hook that counts the timeline samples: 0 when nothing ran. */
  async function counted(...argv: string[]) {
    let samples = 0;
    const r = await cliWith(argv, { hooks: { onSample: () => samples++ } });
    return { ...r, samples };
  }

  it('refuses, before running anything, an output whose directory is missing or that is of the wrong kind', async () => {
    const missing = join(dir, 'no-such-dir', 'report.json');
    const cases = [
      [['--out', missing], new RegExp(`^pagevisor: --out ${missing}: directory ${join(dir, 'no-such-dir')} does not exist$`, 'm')],
      [['--html', join(file('tiny.json'), 'x.html')], /^pagevisor: --html .*tiny\.json\/x\.html: .*tiny\.json is not a directory$/m],
      [['--out', dir], /^pagevisor: --out .*: is a directory$/m],
      [['--csv', file('tiny.json')], /^pagevisor: --csv .*tiny\.json: is not a directory$/m],
      [['--csv', join(dir, 'no-such-dir', 'csv')], /^pagevisor: --csv .*: directory .*no-such-dir does not exist$/m],
    ] as const;
    for (const [flags, message] of cases) {
      const r = await counted('run', file('tiny.json'), ...flags);
      expect(r.code, flags.join(' ')).toBe(ExitCode.usage);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
      expect(r.samples).toBe(0);
    }
    // A missing --csv directory whose parent exists is created.
    const created = await counted('run', file('tiny.json'), '--csv', join(dir, 'new-csv'));
    expect(created.code).toBe(ExitCode.ok);
    expect(created.samples).toBeGreaterThan(0);
    expect(await readFile(join(dir, 'new-csv', 'timeline.csv'), 'utf8')).toMatch(/^tNs,/);
  });

  it.skipIf(process.getuid?.() === 0)('refuses, before running anything, a directory it may not write to', async () => {
    const locked = join(dir, 'locked');
    await mkdir(locked, { mode: 0o500 });
    try {
      const r = await counted('run', file('tiny.json'), '--out', join(locked, 'report.json'));
      expect(r.code).toBe(ExitCode.usage);
      expect(r.stderr).toMatch(new RegExp(`^pagevisor: --out ${join(locked, 'report.json')}: ${locked} is not writable \\(EACCES\\)$`, 'm'));
      expect(r.samples).toBe(0);
    } finally {
      await chmod(locked, 0o700);
    }
  });
});

describe('pagevisor run summary wording', () => {
  it('says the figures are still changing when they did not settle before the end', async () => {
    // KSM scans 100 pages every 20 ms: 1 s is not enough to merge the 2,048 pages of tiny.
    const r = await cli('run', file('tiny.json'), '--dedup', 'ksm');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toMatch(/^convergence\s+still changing at the end \(last change at 1\.13 s\)$/m);
    expect(r.stdout).not.toMatch(/^converged at/m);
  });

  it('prints no saving when every guest failed, and says why KSM needs the RAM at boot', async () => {
    const r = await cli('run', '--dedup', 'ksm');
    expect(r.code).toBe(ExitCode.guestFailed);
    expect(r.stdout).toMatch(/^saved\s+none: no guest ran to the end \(8 failed\)$/m);
    expect(r.stdout).not.toMatch(/^saved\s+[\d.]+%$/m);
    const hint = r.stdout.slice(r.stdout.indexOf('ENOMEM at boot')).replace(/\s+/g, ' ');
    expect(hint).toMatch(
      /^ENOMEM at boot under ksm: a scanning strategy merges a page only after the guest has written it, so every page first needs a frame of its own: the machine needs RAM for all 262,144 guest pages at boot \(it has 131,072 frames\)\. Give it more machine\.memoryMiB, run fewer guests, or use inline dedup \(--dedup inline\)/,
    );
    // Without a scanner, the plain reason.
    const none = await cli('run', file('tight.json'), '--dedup', 'none');
    expect(none.stdout).toContain('ENOMEM: the guests need more frames than the machine has (dedup: none).');
    expect(none.stdout).not.toContain('ENOMEM at boot');
  });

  it('shows each domain\'s paged pages with swap, and no such column without', async () => {
    const r = await cli('run', file('tight.json'), '--dedup', 'none', '--swap-policy', 'clock');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toMatch(/^dom\s+name\s+pages\s+private\s+shared\s+zero\s+paged\s+cow faults\s+zero faults\s+state$/m);
    const rows = [...r.stdout.matchAll(/^\s*\d+\s+vm-\d\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s/gm)].map((m) => m.slice(1).map((n) => Number(n.replace(/,/g, ''))));
    expect(rows).toHaveLength(2);
    for (const [pages, priv, shared, zero, paged] of rows) expect(priv! + shared! + zero! + paged!).toBe(pages);
    expect(rows.some((row) => row[4]! > 0)).toBe(true);
    expect((await cli('run', file('tiny.json'))).stdout).not.toMatch(/\bpaged\b/);
  });
});
