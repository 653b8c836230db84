import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGnuTime, parseProcStatTicks, parseVmHwm, runNode } from './child-run.js';

describe('parsers', () => {
  it('reads VmHWM in bytes', () => {
    expect(parseVmHwm('Name:\tnode\nVmPeak:\t  900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 100 kB\n')).toBe(51200 * 1024);
    expect(parseVmHwm('Name:\tnode\n')).toBe(0);
  });

  it("reads GNU time's '%M %U %S' (KiB, user and system seconds) from its last line", () => {
    expect(parseGnuTime('123456 12.34 1.50\n')).toEqual({ maxRssBytes: 123456 * 1024, cpuMs: 13840 });
    expect(parseGnuTime('Command exited with non-zero status 2\n4096 0.00 0.01\n')).toEqual({ maxRssBytes: 4096 * 1024, cpuMs: 10 });
    expect(parseGnuTime('4096 0,25 0,05')).toEqual({ maxRssBytes: 4096 * 1024, cpuMs: 300 });
    expect(parseGnuTime('garbage')).toBeUndefined();
    expect(parseGnuTime('4096')).toBeUndefined();
    expect(parseGnuTime('')).toBeUndefined();
  });

  it("reads utime + stime from /proc/PID/stat, past a command name with spaces and parentheses", () => {
    const fields = (comm: string) => `4242 (${comm}) R 1 4242 4242 0 -1 4194304 1200 0 0 0 731 42 0 0 20 0 11 0 100 1000000 5000`;
    expect(parseProcStatTicks(fields('node'))).toBe(773);
    expect(parseProcStatTicks(fields('a b) (c'))).toBe(773);
    expect(parseProcStatTicks('no stat here')).toBeUndefined();
    expect(parseProcStatTicks('1 (x) R 1')).toBeUndefined();
  });
});

describe('runNode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-child-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('returns the output, exit code and a peak RSS at least as large as the memory touched', async () => {
    const script = join(dir, 'touch.mjs');
    writeFileSync(script, 'const b = new Uint8Array(64 << 20); b.fill(1); process.stdout.write(`${process.argv[2]} ${b[123]}\n`); process.exit(3);');
    const r = await runNode(script, ['hello']);
    expect(r.code).toBe(3);
    expect(r.timedOut).toBe(false);
    expect(r.stdout).toBe('hello 1\n');
    expect(r.wallMs).toBeGreaterThan(0);
    if (r.rssSource !== 'none') expect(r.maxRssBytes).toBeGreaterThan(64 << 20);
  });

  it('measures the CPU time of a child that keeps a core busy', async () => {
    const script = join(dir, 'spin.mjs');
    writeFileSync(script, 'const end = Date.now() + 300; let x = 0; while (Date.now() < end) x++; process.stdout.write(String(x > 0));');
    const r = await runNode(script, []);
    expect(r.stdout).toBe('true');
    if (process.platform === 'linux') expect(r.cpuSource).not.toBe('none');
    if (r.cpuSource !== 'none') expect(r.cpuMs).toBeGreaterThan(0);
    else expect(r.cpuMs).toBe(0);
  });

  it('kills a child that outlives its timeout', async () => {
    const script = join(dir, 'sleep.mjs');
    writeFileSync(script, 'setTimeout(() => {}, 30000);');
    const r = await runNode(script, [], { timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.code === null || r.code !== 0).toBe(true);
    expect(r.wallMs).toBeLessThan(20_000);
  });
});
