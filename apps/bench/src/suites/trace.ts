import { measurement, type Measurement } from '../measurement.js';
import type { SuiteContext, SuiteResult } from '../suite-context.js';
import { benchTrace, CAN_ISOLATE, type TraceBench } from '../trace-bench.js';

/**
 * Trace replay (workloads' writer, reader and replay through the hypervisor under inline dedup)
 * at 10^4, 10^5 and 10^6 events (quick: 10^4 and 3 x 10^4), each case in a child process of
 * its own: events written and replayed per second and the replay's peak RSS, which should not
 * grow with the trace's length.
 */
export async function runTrace(ctx: SuiteContext): Promise<SuiteResult> {
  const sizes = ctx.quick ? [10_000, 30_000] : [10_000, 100_000, 1_000_000];
  const benches: TraceBench[] = [];
  for (let r = 0; r < ctx.repeats; r++) {
    ctx.log(`trace: ${sizes.join(', ')} events${ctx.repeats > 1 ? `, repeat ${r + 1}` : ''}`);
    benches.push(await benchTrace({ sizes, isolate: CAN_ISOLATE }));
  }
  const out: Measurement[] = [];
  sizes.forEach((events, i) => {
    const cases = benches.map((b) => b.cases[i]!);
    const m = (key: string, name: string, unit: string, better: 'higher' | 'lower', samples: number[], exact = false): Measurement =>
      measurement({ suite: 'trace', group: `events-${events}`, key, name: `${events.toLocaleString('en-US')} events: ${name}`, unit, better, samples, exact });
    out.push(
      m('replay', 'replay', 'events/s', 'higher', cases.map((c) => c.replayEventsPerS)),
      m('write', 'generate and write', 'events/s', 'higher', cases.map((c) => c.writeEventsPerS)),
      m('peak-rss', 'peak RSS of the replay', 'bytes', 'lower', cases.map((c) => c.peakRssBytes)),
      m('bytes-per-event', 'trace file bytes per event', 'bytes', 'lower', cases.map((c) => c.bytesPerEvent), true),
    );
  });
  const growth = benches.map((b) => b.rssGrowthBytes);
  const b0 = benches[0]!;
  return {
    suite: 'trace',
    measurements: out,
    notes: [
      `${b0.domains} domains x ${b0.pagesPerDomain} pages, fingerprint traces, inline dedup${b0.isolated ? ', a child process per case' : ' (in this process: RSS figures carry over)'}; peak RSS sampled every 4096 events.`,
      `Peak RSS growth from the last-but-one to the last case: ${growth.map((g) => `${(g / 1048576).toFixed(1)} MiB`).join(', ')} (flat memory: about 0).`,
    ],
    details: { rssGrowthBytes: growth },
  };
}
