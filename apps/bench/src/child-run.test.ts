import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTimeKib, parseVmHwm, runNode } from './child-run.js';

describe('parsers', () => {
  it('reads VmHWM in bytes', () => {
    expect(parseVmHwm('Name:\tnode\nVmPeak:\t  900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 100 kB\n')).toBe(51200 * 1024);
    expect(parseVmHwm('Name:\tnode\n')).toBe(0);
  });

  it('reads GNU time %M (KiB) from its last line', () => {
    expect(parseTimeKib('123456\n')).toBe(123456 * 1024);
    expect(parseTimeKib('Command exited with non-zero status 2\n4096\n')).toBe(4096 * 1024);
    expect(parseTimeKib('garbage')).toBe(0);
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

  it('kills a child that outlives its timeout', async () => {
    const script = join(dir, 'sleep.mjs');
    writeFileSync(script, 'setTimeout(() => {}, 30000);');
    const r = await runNode(script, [], { timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.code === null || r.code !== 0).toBe(true);
    expect(r.wallMs).toBeLessThan(20_000);
  });
});
