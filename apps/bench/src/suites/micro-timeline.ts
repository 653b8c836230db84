import { InlineDedup } from '@pagevisor/dedup';
import { Hypervisor } from '@pagevisor/hypervisor';
import { timelineSample, type TimelineSample } from '@pagevisor/simulator';
import { asGfn, PAGE_SIZE } from '@pagevisor/types';
import { formatBytes } from '../format.js';
import { measurement, median, type Measurement } from '../measurement.js';
import { timePaired } from '../measure.js';
import { Contents } from '../page-contents.js';
import { throwProblems, type SuiteContext } from '../suite-context.js';

/** Ids of the timeline-sample figures (the target reads `ratio`). */
export const TIMELINE_ID = {
  small: 'micro.hypervisor.timeline-sample-1g',
  large: 'micro.hypervisor.timeline-sample-1t',
  ratio: 'micro.hypervisor.timeline-sample-ratio',
} as const;

/** Frames of the two hosts: 1 GiB and 1 TiB of RAM (2^28 frames). */
export const TIMELINE_FRAMES = { small: 2 ** 18, large: 2 ** 28 } as const;

/** A sample of the timeline should take this long at least per timed call (so the loop is not timed at the clock's resolution). */
const CALL_MS = 2;
/** Alternations of the two hosts per repeat (see benchTimelineSample). */
const ROUNDS = 5;

/**
 * A host of `frames` frames under inline dedup with `domains` guests of `pages` pages each, the
 * same on any RAM size: the first half of each guest's pages one image (shared across guests),
 * every eighth page of the rest zeros, the others private; and one partial write to a shared
 * page per guest (a copy-on-write fault).
 */
async function timelineHost(frames: number, domains: number, pages: number): Promise<{ hv: Hypervisor; createMs: number }> {
  const t0 = performance.now();
  const hv = await Hypervisor.create({ frames, dedup: new InlineDedup() });
  const createMs = performance.now() - t0;
  const contents = new Contents(8);
  const zeros = new Uint8Array(PAGE_SIZE);
  const gfns = Array.from({ length: pages }, (_, i) => i);
  for (let d = 0; d < domains; d++) {
    const dom = hv.createDomain({ maxPages: pages });
    hv.populatePhysmap(dom, gfns);
    for (let g = 0; g < pages; g++) {
      const page = g < pages / 2 ? contents.at(g, 0) : g % 8 === 0 ? zeros : contents.at(g, 1 + d);
      hv.writePage(dom, asGfn(g), 0, page, 0, PAGE_SIZE);
    }
    hv.writePage(dom, asGfn(0), 0, Uint8Array.of(d + 1), 0, 1);
  }
  return { hv, createMs };
}

/** The figures two hosts of one population must agree on: all but the time. */
function populationOf(s: TimelineSample): string {
  const { tNs: _t, ...rest } = s;
  return JSON.stringify(rest);
}

/**
 * The cost of one timeline sample on a host of 1 GiB and on one of 1 TiB of RAM, the same guests
 * and pages on both: the two timed in alternation (see timePaired), {@link ROUNDS} times a repeat,
 * and per repeat the median of the 1 TiB host's cost over the 1 GiB host's (the target's figure)
 * and of each host's rate. Machine RAM is allocated in chunks
 * as frames are first written, so the 1 TiB host costs its frame table and allocator, not 1 TiB.
 * Checks that both hosts sample the same figures (what the guests did is the same) and audits
 * the 1 GiB host (the 1 TiB host's audit walks 2^28 frames: left out).
 */
export async function benchTimelineSample(ctx: SuiteContext): Promise<{ measurements: Measurement[]; notes: string[] }> {
  const domains = 4;
  const pages = ctx.quick ? 2048 : 8192;
  ctx.log('micro: hypervisor (timeline sample, 1 GiB and 1 TiB hosts)');
  const small = await timelineHost(TIMELINE_FRAMES.small, domains, pages);
  const large = await timelineHost(TIMELINE_FRAMES.large, domains, pages);
  throwProblems('audit of the 1 GiB host of the timeline-sample benchmark', small.hv.audit());
  const expected = populationOf(timelineSample(small.hv, 0));
  const got = populationOf(timelineSample(large.hv, 0));
  if (got !== expected) throw new Error(`timeline sample: the 1 TiB host samples ${got}, the 1 GiB host ${expected}: not the same population`);

  let last: TimelineSample | undefined;
  const loop = (hv: Hypervisor) => (n: number): void => {
    for (let i = 0; i < n; i++) last = timelineSample(hv, i);
  };
  const runSmall = loop(small.hv);
  const runLarge = loop(large.hv);
  // Samples per timed call: as many as take CALL_MS on the slower host (one when a sample takes longer).
  runSmall(64);
  runLarge(64);
  const t0 = performance.now();
  runLarge(16);
  const perSampleMs = Math.max((performance.now() - t0) / 16, 1e-6);
  const ops = Math.max(1, Math.min(4096, Math.floor(CALL_MS / perSampleMs)));
  // Per repeat, ROUNDS alternations: the medians of their rates and of their ratios, so that a
  // few ms of another process on one host's turn (the machine is shared) do not make the repeat.
  const smallRates: number[] = [];
  const largeRates: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ctx.repeats; r++) {
    const [a, b] = timePaired(ops, ROUNDS, runSmall, runLarge);
    smallRates.push(median(a));
    largeRates.push(median(b));
    ratios.push(median(a.map((x, i) => x / b[i]!)));
  }
  if (last === undefined || last.guestPages !== domains * pages) throw new Error(`timeline sample: ${last?.guestPages} guest pages sampled, expected ${domains * pages}`);

  const m = (key: string, name: string, samples: number[]): Measurement =>
    measurement({ suite: 'micro', group: 'hypervisor', key, name, unit: 'samples/s', better: 'higher', samples });
  const meta = (hv: Hypervisor): string => formatBytes(hv.metadataBytes());
  return {
    measurements: [
      m('timeline-sample-1g', 'timeline sample (totals + swap figures), 1 GiB host', smallRates),
      m('timeline-sample-1t', 'timeline sample (totals + swap figures), 1 TiB host', largeRates),
      measurement({
        suite: 'micro',
        group: 'hypervisor',
        key: 'timeline-sample-ratio',
        name: "timeline sample: 1 TiB host's cost / 1 GiB host's (per repeat)",
        unit: 'x',
        better: 'lower',
        samples: ratios,
      }),
    ],
    notes: [
      `timeline sample: what the simulator's run loop reads at each sample (Hypervisor.totals() and swapStats(), no swap configured), on hosts of ${TIMELINE_FRAMES.small} and ${TIMELINE_FRAMES.large} frames under inline dedup with the same ${domains} guests of ${pages} pages (half one image, zero pages, copy-on-write faults), timed in alternation (${ROUNDS} rounds a repeat, the medians kept), ${ops} samples a call; the 1 TiB host's typed arrays (frame table, allocator, reverse map, index) hold ${meta(large.hv)} (the 1 GiB host's ${meta(small.hv)}), built in ${large.createMs.toFixed(0)} ms (the 1 GiB host in ${small.createMs.toFixed(0)} ms).`,
    ],
  };
}
