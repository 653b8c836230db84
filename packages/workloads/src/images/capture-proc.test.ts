// tools/capture-proc.mjs against a real process: a `sleep` child, stopped while it is captured.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PAGE_SIZE } from '@pagevisor/types';
import { afterAll, describe, expect, it } from 'vitest';
import { tempImages } from '../../tests/guest-images.js';
import { openGuestImage } from './guest-image.js';

const TOOL = fileURLToPath(new URL('../../../../tools/capture-proc.mjs', import.meta.url));
const files = tempImages();
afterAll(() => files.remove());

interface Mapping {
  readonly start: bigint;
  readonly end: bigint;
  readonly perms: string;
  readonly name: string;
}

function maps(pid: number): Mapping[] {
  return readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [range, perms, , , , ...name] = l.split(/\s+/);
      const [s, e] = range!.split('-');
      return { start: BigInt(`0x${s}`), end: BigInt(`0x${e}`), perms: perms!, name: name.join(' ') };
    });
}

/** Reads `length` bytes of the process at `vaddr`; throws what the kernel refuses. */
function readMem(pid: number, vaddr: bigint, length: number): Uint8Array {
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    const out = new Uint8Array(length);
    const n = readSync(fd, out, 0, length, vaddr);
    if (n !== length) throw new Error(`short read of ${n} bytes`);
    return out;
  } finally {
    closeSync(fd);
  }
}

function runTool(...args: string[]) {
  return spawnSync(process.execPath, [TOOL, ...args], { encoding: 'utf8', timeout: 60_000 });
}

async function waitUntil(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting until ${what}`);
}

const SPECIAL = new Set(['[vvar]', '[vsyscall]', '[vvar_vclock]']);
const anonymous = (name: string): boolean => name === '' || name.startsWith('[') || name.startsWith('/dev/zero') || name.startsWith('/memfd:');

describe('tools/capture-proc.mjs', () => {
  it('captures a stopped process: every readable private or anonymous region, page for page, and what it skipped', async (ctx) => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await once(child, 'spawn');
    const pid = child.pid!;
    try {
      // Let the loader map the libraries, then stop the process so that its memory holds still.
      await waitUntil(() => maps(pid).some((m) => m.name === '[stack]') && maps(pid).some((m) => m.name.includes('libc')), 'sleep has loaded libc');
      process.kill(pid, 'SIGSTOP');
      await waitUntil(() => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('T'), 'sleep is stopped');
      const before = maps(pid);
      const probe = before.find((m) => m.perms.startsWith('r') && !SPECIAL.has(m.name))!;
      try {
        readMem(pid, probe.start, PAGE_SIZE);
      } catch (e) {
        ctx.skip(`/proc/${pid}/mem cannot be read here (${(e as Error).message}): capturing needs ptrace access to the process`);
      }

      const out = join(files.dir, 'sleep.pvproc');
      const run = runTool('--pid', String(pid), '--out', out);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(run.stdout).toContain(`captured process ${pid} into ${out}`);
      expect(existsSync(`${out}.tmp`) || existsSync(`${out}.data.tmp`)).toBe(false);

      const image = openGuestImage(out, 'proc');
      const captured = before.filter((m) => !SPECIAL.has(m.name) && m.perms[0] === 'r' && (m.perms[3] === 'p' || anonymous(m.name)));
      expect(image.skipped.filter((s) => s.reason === 'read-failed')).toEqual([]);
      expect(image.regions.map((r) => [r.address, r.pages, r.perms, r.name])).toEqual(
        captured.map((m) => [`0x${m.start.toString(16)}`, Number((m.end - m.start) / BigInt(PAGE_SIZE)), m.perms, m.name]),
      );
      expect(image.regions.some((r) => r.name === '[stack]') && image.regions.some((r) => r.name === '[heap]' || r.name === '')).toBe(true);
      const skippedNames = image.skipped.map((s) => [s.name, s.reason]);
      for (const m of before.filter((x) => SPECIAL.has(x.name))) expect(skippedNames).toContainEqual([m.name, 'special']);
      for (const m of before.filter((x) => !SPECIAL.has(x.name) && x.perms[0] !== 'r')) expect(skippedNames).toContainEqual([m.name, 'unreadable']);
      expect(image.skipped.length + image.regions.length).toBe(before.length);

      let compared = 0;
      const differing: number[] = [];
      image.forEachPage((gfn, page) => {
        const r = image.regions.find((x) => gfn >= x.firstGfn && gfn < x.firstGfn + x.pages)!;
        const vaddr = BigInt(r.address) + BigInt((gfn - r.firstGfn) * PAGE_SIZE);
        if (Buffer.compare(Buffer.from(readMem(pid, vaddr, PAGE_SIZE)), Buffer.from(page)) !== 0) differing.push(gfn);
        compared++;
      });
      expect(compared).toBe(image.pages);
      expect(differing).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses a missing --pid (exit 2) and a process that does not exist (exit 1, no file written)', () => {
    const usage = runTool('--out', join(files.dir, 'x.pvproc'));
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('capture-proc: --pid: must be a positive integer, got ""');
    const out = join(files.dir, 'gone.pvproc');
    const gone = runTool('--pid', '999999999', '--out', out);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(/^capture-proc: ENOENT: no such file or directory, open '\/proc\/999999999\/maps'/);
    expect(existsSync(out) || existsSync(`${out}.tmp`) || existsSync(`${out}.data.tmp`)).toBe(false);
  });
});
