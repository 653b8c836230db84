import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InlineDedup } from '@pagevisor/dedup';
import { Hypervisor } from '@pagevisor/hypervisor';
import { generateTrace, replayTraceEvents, TraceReader } from '@pagevisor/workloads';

/** One trace length: writing it, then replaying it under inline dedup. */
export interface TraceBenchCase {
  /** Events in the trace. */
  readonly events: number;
  /** Bytes of the trace file. */
  readonly fileBytes: number;
  /** File bytes per event. */
  readonly bytesPerEvent: number;
  /** Events generated and written per second of wall time. */
  readonly writeEventsPerS: number;
  /** Wall seconds of the replay. */
  readonly replayS: number;
  /** Events replayed per second of wall time. */
  readonly replayEventsPerS: number;
  /** Resident set size once the hypervisor was built, before the replay, in bytes. */
  readonly rssBeforeReplayBytes: number;
  /** Largest RSS sampled during the replay (every 4096 events), in bytes. */
  readonly peakRssBytes: number;
  /** Simulated seconds the trace covers. */
  readonly simulatedS: number;
  /** Machine frames in use at the end. */
  readonly machineFramesUsed: number;
  /** Events the hypervisor refused (0 expected). */
  readonly refused: number;
}

/** The trace benchmark: cases by length, and how much the peak RSS grew from one to the next. */
export interface TraceBench {
  /** Domains of every trace. */
  readonly domains: number;
  /** Pages of each domain. */
  readonly pagesPerDomain: number;
  /** True when each case ran in a process of its own (so its peak RSS is its own). */
  readonly isolated: boolean;
  /** The cases, shortest first. */
  readonly cases: readonly TraceBenchCase[];
  /** Peak RSS of the longest case minus that of the one before it, in bytes (0 with one case). */
  readonly rssGrowthBytes: number;
}

/** Options of {@link benchTrace}. */
export interface TraceBenchOptions {
  /** Trace lengths in events (default 10^4, 10^5, 10^6). */
  readonly sizes?: readonly number[];
  /** Domains (default 4). */
  readonly domains?: number;
  /** Pages of each domain (default 2048: 10^5 events touch every page). */
  readonly pagesPerDomain?: number;
  /** Run each case in a child process of its own (default true), so that peak RSS figures do not carry over. */
  readonly isolate?: boolean;
}

interface CaseParams {
  readonly events: number;
  readonly domains: number;
  readonly pagesPerDomain: number;
}

const CHILD_FLAG = '--pagevisor-trace-bench-case';

/** True when this module runs as JavaScript (dist/), so that cases can run in forked children of it. */
export const CAN_ISOLATE = fileURLToPath(import.meta.url).endsWith('.js');
const SEED = 1;

/**
 * For each size, generates a fingerprint trace of that many events (domains booting a shared
 * image, then rewriting pages: see `generateTrace`) into a temporary file, then replays it
 * streaming on a hypervisor sized for every domain under inline dedup, sampling the RSS every
 * 4096 events. The hypervisor is the same for every size, so with a streaming reader and writer
 * the peak RSS should not grow with the trace's length: `rssGrowthBytes` shows it.
 */
export async function benchTrace(options: TraceBenchOptions = {}): Promise<TraceBench> {
  const sizes = options.sizes ?? [10_000, 100_000, 1_000_000];
  const domains = options.domains ?? 4;
  const pagesPerDomain = options.pagesPerDomain ?? 2048;
  const isolate = options.isolate ?? true;
  const cases: TraceBenchCase[] = [];
  for (const events of sizes) {
    const params: CaseParams = { events, domains, pagesPerDomain };
    cases.push(isolate ? await runInChild(params) : await runCase(params));
  }
  const n = cases.length;
  return { domains, pagesPerDomain, isolated: isolate, cases, rssGrowthBytes: n < 2 ? 0 : cases[n - 1]!.peakRssBytes - cases[n - 2]!.peakRssBytes };
}

/** The lines `benchTrace`'s figures print as. */
export function formatTraceBench(b: TraceBench): string[] {
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const mib = (x: number): string => (x / (1024 * 1024)).toFixed(1);
  const lines = [`  trace replay, ${b.domains} domains × ${b.pagesPerDomain} pages, inline dedup, fingerprint traces${b.isolated ? ' (a process per case)' : ''}:`];
  for (const c of b.cases) {
    lines.push(
      `    ${fmt(c.events).padStart(10)} events  ${mib(c.fileBytes).padStart(7)} MiB (${c.bytesPerEvent.toFixed(1)} B/event)  write ${fmt(c.writeEventsPerS).padStart(10)}/s  replay ${fmt(c.replayEventsPerS).padStart(9)}/s (${c.replayS.toFixed(2)} s)  RSS ${mib(c.rssBeforeReplayBytes)} -> peak ${mib(c.peakRssBytes)} MiB`,
    );
  }
  if (b.cases.length >= 2) lines.push(`    peak RSS growth from the last-but-one to the last case: ${mib(b.rssGrowthBytes)} MiB`);
  return lines;
}

/** Writes and replays one trace in this process. */
async function runCase(p: CaseParams): Promise<TraceBenchCase> {
  const dir = mkdtempSync(join(tmpdir(), 'pagevisor-trace-bench-'));
  try {
    const path = join(dir, `trace-${p.events}.pvt`);
    let t0 = performance.now();
    const trace = generateTrace(path, { events: p.events, domains: p.domains, pagesPerDomain: p.pagesPerDomain, seed: SEED });
    const writeS = (performance.now() - t0) / 1000;
    const hv = await Hypervisor.create({ frames: p.domains * p.pagesPerDomain + 64, dedup: new InlineDedup() });
    const rssBefore = process.memoryUsage.rss();
    t0 = performance.now();
    const reader = TraceReader.open(path);
    const r = replayTraceEvents(reader, hv, { rssEveryEvents: 4096 });
    reader.close();
    const replayS = (performance.now() - t0) / 1000;
    const audit = hv.audit();
    if (audit.length > 0) throw new Error(`audit after the trace replay: ${audit.join('; ')}`);
    return {
      events: trace.events,
      fileBytes: trace.bytes,
      bytesPerEvent: trace.bytes / trace.events,
      writeEventsPerS: trace.events / writeS,
      replayS,
      replayEventsPerS: r.events / replayS,
      rssBeforeReplayBytes: rssBefore,
      peakRssBytes: Math.max(r.peakRssBytes, rssBefore),
      simulatedS: r.simulatedNs / 1e9,
      machineFramesUsed: hv.totals().machineFramesUsed,
      refused: r.refused,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs {@link runCase} in a fresh Node process running this file, so that its RSS is its own. */
function runInChild(p: CaseParams): Promise<TraceBenchCase> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [CHILD_FLAG, JSON.stringify(p)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: TraceBenchCase | undefined;
    child.on('message', (m) => {
      result = m as TraceBenchCase;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0 && result !== undefined) resolve(result);
      else reject(new Error(`trace bench: the case of ${p.events} events exited with code ${code}`));
    });
  });
}

// A child started by runInChild: run the case, send the figures, exit.
if (process.argv[2] === CHILD_FLAG && process.send !== undefined) {
  runCase(JSON.parse(process.argv[3]!) as CaseParams).then(
    (r) => process.send!(r, () => process.exit(0)),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
