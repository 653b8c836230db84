import { execFileSync, fork, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** GNU time, which reports a child's peak RSS (`%M`, KiB) and CPU time (`%U` user, `%S` system, seconds). */
export const GNU_TIME = '/usr/bin/time';

/** GNU time's format: peak RSS in KiB, user and system CPU seconds (see {@link parseGnuTime}). */
export const GNU_TIME_FORMAT = '%M %U %S';

/** How a child's peak RSS was measured. */
export type RssSource = 'time' | 'vmhwm' | 'none';

/** How a child's CPU time was measured: GNU time's `%U + %S`, polling /proc/PID/stat's utime + stime, or not at all. */
export type CpuSource = 'time' | 'proc' | 'none';

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
  /** CPU milliseconds of the child, user + system, all its threads (0 when it could not be measured). */
  readonly cpuMs: number;
  /** Where the CPU time came from (see {@link CpuSource}). */
  readonly cpuSource: CpuSource;
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

/**
 * Parses GNU time's `-f '%M %U %S'` output (its last non-empty line: peak RSS in KiB, user and
 * system CPU seconds; a line before it says when the command failed) into bytes and CPU
 * milliseconds; undefined when that line is not three such numbers.
 */
export function parseGnuTime(text: string): { maxRssBytes: number; cpuMs: number } | undefined {
  const last = text.trim().split('\n').at(-1)?.trim() ?? '';
  // The seconds in the C locale's 1.23 or a decimal comma's 1,23.
  const m = /^(\d+) (\d+(?:[.,]\d+)?) (\d+(?:[.,]\d+)?)$/.exec(last);
  if (m === null) return undefined;
  const seconds = (x: string): number => Number(x.replace(',', '.'));
  return { maxRssBytes: Number(m[1]) * 1024, cpuMs: Math.round((seconds(m[2]!) + seconds(m[3]!)) * 1000) };
}

/**
 * utime + stime of a `/proc/PID/stat` line (fields 14 and 15, in clock ticks: the whole process,
 * every thread), or undefined when it is not one. The fields are counted after the `)` that
 * closes the command name, which may itself hold spaces and parentheses.
 */
export function parseProcStatTicks(stat: string): number | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  // After ")": field 3 (state) onwards; utime is field 14, stime 15.
  const fields = stat.slice(close + 1).trim().split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isInteger(utime) && Number.isInteger(stime) ? utime + stime : undefined;
}

let clockTicks: number | undefined;

/** Clock ticks per second of /proc's CPU figures (`getconf CLK_TCK`; 100, Linux's USER_HZ, when getconf fails). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * Runs `node [nodeFlags] script args` and collects its output, wall time, peak RSS and CPU time.
 * When /usr/bin/time exists the child runs under it, and both figures are GNU time's, from the
 * kernel's accounting of the child at its exit (wait4's rusage): the maximum resident set size,
 * and user + system CPU time of every thread (to 10 ms). Else, on Linux, /proc/PID/status and
 * /proc/PID/stat are read every 50 ms: the largest VmHWM, and the last utime + stime (both
 * miss what the child did in its last 50 ms). Else 0.
 */
export function runNode(script: string, args: readonly string[], opts: RunNodeOptions = {}): Promise<ChildRun> {
  const useTime = existsSync(GNU_TIME);
  const dir = useTime ? mkdtempSync(join(tmpdir(), 'pagevisor-bench-time-')) : '';
  const timeFile = join(dir, 'rss');
  const nodeArgs = [...(opts.nodeFlags ?? []), script, ...args];
  const [cmd, cmdArgs] = useTime ? [GNU_TIME, ['-f', GNU_TIME_FORMAT, '-o', timeFile, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // A process group of its own, so that a timeout kills node and not only GNU time above it.
    const child = spawn(cmd, cmdArgs, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let hwm = 0;
    let ticks: number | undefined;
    const poll =
      useTime || process.platform !== 'linux'
        ? undefined
        : setInterval(() => {
            try {
              hwm = Math.max(hwm, parseVmHwm(readFileSync(`/proc/${child.pid}/status`, 'utf8')));
              ticks = parseProcStatTicks(readFileSync(`/proc/${child.pid}/stat`, 'utf8')) ?? ticks;
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
      let cpuMs = ticks === undefined ? 0 : (ticks * 1000) / ticksPerSecond();
      let cpuSource: CpuSource = ticks === undefined ? 'none' : 'proc';
      if (useTime) {
        let parsed: ReturnType<typeof parseGnuTime>;
        try {
          parsed = parseGnuTime(readFileSync(timeFile, 'utf8'));
        } catch {
          parsed = undefined;
        }
        maxRssBytes = parsed?.maxRssBytes ?? 0;
        rssSource = maxRssBytes > 0 ? 'time' : 'none';
        cpuMs = parsed?.cpuMs ?? 0;
        cpuSource = parsed === undefined ? 'none' : 'time';
        rmSync(dir, { recursive: true, force: true });
      }
      resolve({ code, signal, timedOut, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), wallMs, maxRssBytes, rssSource, cpuMs, cpuSource });
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
