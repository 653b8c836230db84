import { fork, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** GNU time, which reports a child's peak RSS (`%M`, KiB). */
export const GNU_TIME = '/usr/bin/time';

/** How a child's peak RSS was measured. */
export type RssSource = 'time' | 'vmhwm' | 'none';

/** A finished child process. */
export interface ChildRun {
  /** Exit code (null when killed by a signal). */
  readonly code: number | null;
  /** Signal that ended it, when one did (the timeout's SIGKILL). */
  readonly signal: NodeJS.Signals | null;
  /** True when it ran past its timeout and was killed. */
  readonly timedOut: boolean;
  /** Its stdout. */
  readonly stdout: string;
  /** Its stderr (GNU time's line removed). */
  readonly stderr: string;
  /** Wall milliseconds from spawn to exit. */
  readonly wallMs: number;
  /** Peak resident set size in bytes (0 when it could not be measured). */
  readonly maxRssBytes: number;
  /** Where the peak RSS came from: GNU time's `%M`, polling /proc/PID/status VmHWM, or nowhere. */
  readonly rssSource: RssSource;
}

/** Options of {@link runNode}. */
export interface RunNodeOptions {
  /** Node flags before the script, e.g. `--max-old-space-size=4096`. */
  readonly nodeFlags?: readonly string[];
  /** Kill the child (SIGKILL) after this many ms (default: no limit). */
  readonly timeoutMs?: number;
  /** Working directory. */
  readonly cwd?: string;
}

/** Parses `/proc/PID/status`'s VmHWM line (kB) into bytes; 0 when absent. */
export function parseVmHwm(status: string): number {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** Parses GNU time's `-f %M` output (KiB, last non-empty line) into bytes; 0 when it is not a number. */
export function parseTimeKib(text: string): number {
  const last = text.trim().split('\n').at(-1)?.trim() ?? '';
  return /^\d+$/.test(last) ? Number(last) * 1024 : 0;
}

/**
 * Runs `node [nodeFlags] script args` and collects its output, wall time and peak RSS. The peak
 * RSS is GNU time's maximum resident set size when /usr/bin/time exists (the child runs under
 * it), else the largest VmHWM read from /proc/PID/status every 50 ms (which misses a peak in the
 * child's last 50 ms), else 0.
 */
export function runNode(script: string, args: readonly string[], opts: RunNodeOptions = {}): Promise<ChildRun> {
  const useTime = existsSync(GNU_TIME);
  const dir = useTime ? mkdtempSync(join(tmpdir(), 'pagevisor-bench-time-')) : '';
  const timeFile = join(dir, 'rss');
  const nodeArgs = [...(opts.nodeFlags ?? []), script, ...args];
  const [cmd, cmdArgs] = useTime ? [GNU_TIME, ['-f', '%M', '-o', timeFile, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // A process group of its own, so that a timeout kills node and not only GNU time above it.
    const child = spawn(cmd, cmdArgs, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let hwm = 0;
    const poll =
      useTime || process.platform !== 'linux'
        ? undefined
        : setInterval(() => {
            try {
              hwm = Math.max(hwm, parseVmHwm(readFileSync(`/proc/${child.pid}/status`, 'utf8')));
            } catch {
              // Gone between the exit and this read: the last reading stands.
            }
          }, 50);
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            try {
              process.kill(-child.pid!, 'SIGKILL');
            } catch {
              child.kill('SIGKILL');
            }
          }, opts.timeoutMs);
    child.on('error', (e) => {
      if (poll) clearInterval(poll);
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      const wallMs = performance.now() - t0;
      if (poll) clearInterval(poll);
      if (timer) clearTimeout(timer);
      let maxRssBytes = hwm;
      let rssSource: RssSource = hwm > 0 ? 'vmhwm' : 'none';
      if (useTime) {
        try {
          maxRssBytes = parseTimeKib(readFileSync(timeFile, 'utf8'));
          rssSource = maxRssBytes > 0 ? 'time' : 'none';
        } catch {
          rssSource = 'none';
        }
        rmSync(dir, { recursive: true, force: true });
      }
      resolve({ code, signal, timedOut, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), wallMs, maxRssBytes, rssSource });
    });
  });
}

/**
 * Runs the module at `modulePath` in a fresh Node process (`fork`, with `args`) and resolves
 * with the first message it sends over IPC; rejects when it exits without one or with a code
 * other than 0. The module decides from its arguments that it is the child, does its work and
 * sends the result (see isolated-child.ts).
 */
export function forkForResult<T>(modulePath: string, args: readonly string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(modulePath, [...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: { value: T } | undefined;
    child.on('message', (m) => {
      result ??= { value: m as T };
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0 && result !== undefined) resolve(result.value);
      else reject(new Error(`${modulePath} ${args.join(' ')}: exited with ${code ?? signal}${result === undefined ? ', no result' : ''}`));
    });
  });
}
