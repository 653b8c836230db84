import { InlineDedup, NoDedup } from '@pagevisor/dedup';
import { Hypervisor } from '@pagevisor/hypervisor';
import { createMachineMemory, pageBuffer } from '@pagevisor/machine';
import { asGfn, asMfn, PAGE_SIZE, type DomId } from '@pagevisor/types';
import { measurement, median, withBounds, type Bound, type Measurement } from '../measurement.js';
import { timePaired, timeRates } from '../measure.js';
import { throwProblems, type SuiteContext } from '../suite-context.js';
import { BOUND } from './limits.js';
import { Contents } from '../page-contents.js';

/** Bytes of the partial write that takes a copy-on-write fault. */
const PARTIAL_WRITE_BYTES = 64;


async function withDomains(frames: number, dedup: InlineDedup | NoDedup, domains: number, pages: number): Promise<{ hv: Hypervisor; doms: DomId[] }> {
  const hv = await Hypervisor.create({ frames, dedup });
  const doms: DomId[] = [];
  const gfns = Array.from({ length: pages }, (_, i) => i);
  for (let d = 0; d < domains; d++) {
    const dom = hv.createDomain({ maxPages: pages });
    hv.populatePhysmap(dom, gfns);
    doms.push(dom);
  }
  return { hv, doms };
}

function auditOrThrow(hv: Hypervisor, what: string): void {
  throwProblems(`audit after the ${what} benchmark`, hv.audit());
}

/** Throws unless `counter` grew by exactly `expected`: the benchmark took the path it names. */
function expectDelta(what: string, before: number, after: number, expected: number): void {
  if (after - before !== expected) throw new Error(`${what}: counted ${after - before}, expected ${expected}`);
}

/**
 * The hypervisor's page paths, as a guest's accesses take them: whole-page writes without dedup,
 * with inline dedup (new content; content stored already, with two sharers a frame or one popular
 * frame), partial writes to shared pages (copy-on-write faults) and whole-page reads.
 */
export async function benchHypervisor(ctx: SuiteContext): Promise<{ measurements: Measurement[]; notes: string[] }> {
  const pages = ctx.quick ? 2048 : 16384;
  const popular = ctx.quick ? 512 : 4096;
  const repeats = ctx.repeats;
  // Pages are built where the machine hashes them in place, as the simulator's guests build theirs.
  const contents = new Contents(2, pageBuffer(1));
  const out: Measurement[] = [];
  // Each figure with its ratios to the bounds of its work (those measured: see boundsNote).
  const add = (key: string, name: string, samples: number[], bounds: readonly Bound[]): void => {
    out.push(withBounds(measurement({ suite: 'micro', group: 'hypervisor', key, name, unit: 'pages/s', better: 'higher', samples }), ctx.limits, bounds));
  };
  const copyBounds = [BOUND.copy, BOUND.nativeCopy];
  const storedBounds = [BOUND.hashCompare, BOUND.nativeHashCompare];
  ctx.log('micro: hypervisor (write paths)');

  // No dedup: find the private frame, copy.
  {
    const { hv, doms } = await withDomains(pages + 16, new NoDedup(), 1, pages);
    const dom = doms[0]!;
    let counter = 0;
    add('write-nodedup', 'whole-page write, no dedup', timeRates({
      ops: pages,
      repeats,
      run: (n) => {
        for (let i = 0; i < n; i++) hv.writePage(dom, asGfn(i % pages), 0, contents.at(++counter, 0), 0, PAGE_SIZE);
      },
    }), copyBounds);
    auditOrThrow(hv, 'no-dedup write');
  }

  // Inline dedup, new content every write: hash, index miss, copy, insert. Timed in alternation
  // with the copy+hash bound on a machine memory of the same size (a 4 KiB hash, then a copy into
  // a frame touched before), so that the target's ratio comes from samples taken side by side.
  {
    const dedup = new InlineDedup();
    const { hv, doms } = await withDomains(pages + 16, dedup, 1, pages);
    const dom = doms[0]!;
    const ref = await createMachineMemory({ frames: pages });
    for (let m = 0; m < pages; m++) ref.write(asMfn(m), 0, contents.at(m, 7), 0, PAGE_SIZE);
    let counter = 0;
    let refCounter = 0;
    let sink = 0;
    const misses0 = dedup.stats()['misses']!;
    let writes = 0;
    const [bound, write] = timePaired(
      pages,
      repeats,
      (n) => {
        for (let i = 0; i < n; i++) {
          const page = contents.at(++refCounter, 7);
          sink ^= ref.hashPage(page);
          ref.write(asMfn(i % pages), 0, page, 0, PAGE_SIZE);
        }
      },
      (n) => {
        for (let i = 0; i < n; i++) hv.writePage(dom, asGfn(i % pages), 0, contents.at(++counter, 1), 0, PAGE_SIZE);
        writes += n;
      },
    );
    if (sink === 0.5) ctx.log('unreachable'); // keeps the hashes alive
    expectDelta('inline write, new content: index misses', misses0, dedup.stats()['misses']!, writes);
    auditOrThrow(hv, 'inline write');
    const boundM = measurement({ suite: 'micro', group: 'hypervisor', key: 'copy-hash-paired', name: 'copy+hash bound, timed beside the inline write', unit: 'pages/s', better: 'higher', samples: bound });
    const writeM = measurement({ suite: 'micro', group: 'hypervisor', key: 'inline-write-new', name: 'inline write, new content (hash, miss, copy, insert)', unit: 'pages/s', better: 'higher', samples: write });
    const paired = { ...writeM, limit: { id: boundM.id, name: 'copy+hash (paired)', ratio: median(write.map((w, i) => w / bound[i]!)) } };
    out.push(boundM, withBounds(paired, ctx.limits, [BOUND.nativeCopyHash]));
  }

  // Inline dedup, content stored already: two reference domains hold contents of families 2 and 3;
  // a third domain writes them in turn, so every write hashes, hits, compares and remaps onto a
  // frame with one other sharer.
  {
    const dedup = new InlineDedup();
    const { hv, doms } = await withDomains(2 * pages + 16, dedup, 3, pages);
    const [a, b, writer] = doms as [DomId, DomId, DomId];
    for (let i = 0; i < pages; i++) {
      hv.writePage(a, asGfn(i), 0, contents.at(i, 2), 0, PAGE_SIZE);
      hv.writePage(b, asGfn(i), 0, contents.at(i, 3), 0, PAGE_SIZE);
    }
    let pass = 0;
    let writes = 0;
    const hits0 = dedup.stats()['hits']!;
    add('inline-write-dup', 'inline write, content stored (hash, hit, compare, remap; 2 sharers)', timeRates({
      ops: pages,
      repeats,
      run: (n) => {
        const family = 2 + (pass++ & 1);
        for (let i = 0; i < n; i++) hv.writePage(writer, asGfn(i % pages), 0, contents.at(i % pages, family), 0, PAGE_SIZE);
        writes += n;
      },
    }), storedBounds);
    expectDelta('inline write, content stored: index hits', hits0, dedup.stats()['hits']!, writes);
    auditOrThrow(hv, 'inline duplicate write');
  }

  // The same hit path onto one popular frame: every page of the domain maps it, so its sharers
  // number the domain's pages (two contents alternate per pass, as the first bench runner did).
  {
    const dedup = new InlineDedup();
    const { hv, doms } = await withDomains(popular + 16, dedup, 1, popular);
    const dom = doms[0]!;
    let pass = 0;
    add('inline-write-dup-popular', `inline write, content stored, one frame of ${popular} sharers`, timeRates({
      ops: popular,
      repeats,
      setup: () => {
        const page = contents.at(0, 4 + (pass++ & 1));
        for (let i = 0; i < popular; i++) hv.writePage(dom, asGfn(i), 0, page, 0, PAGE_SIZE);
      },
      run: (n) => {
        const page = contents.at(0, 4 + (pass++ & 1));
        for (let i = 0; i < n; i++) hv.writePage(dom, asGfn(i), 0, page, 0, PAGE_SIZE);
      },
    }), storedBounds);
    auditOrThrow(hv, 'popular-frame write');
  }

  // Copy-on-write: a reference domain and a sharer hold the same contents (two sharers a frame);
  // a partial write by the sharer copies the frame. Untimed, whole-page writes share them again.
  ctx.log('micro: hypervisor (copy-on-write, read)');
  {
    const dedup = new InlineDedup();
    const { hv, doms } = await withDomains(2 * pages + 16, dedup, 2, pages);
    const [owner, sharer] = doms as [DomId, DomId];
    for (let i = 0; i < pages; i++) hv.writePage(owner, asGfn(i), 0, contents.at(i, 6), 0, PAGE_SIZE);
    const small = new Uint8Array(PARTIAL_WRITE_BYTES).fill(0xa5);
    let faults = 0;
    const cow0 = hv.totals().cowFaults;
    add('cow-fault', `copy-on-write fault (${PARTIAL_WRITE_BYTES}-byte write to a page of 2 sharers)`, timeRates({
      ops: pages,
      repeats,
      setup: () => {
        for (let i = 0; i < pages; i++) hv.writePage(sharer, asGfn(i), 0, contents.at(i, 6), 0, PAGE_SIZE);
      },
      run: (n) => {
        for (let i = 0; i < n; i++) hv.writePage(sharer, asGfn(i), 0, small, 0, PARTIAL_WRITE_BYTES);
        faults += n;
      },
    }), copyBounds);
    expectDelta('copy-on-write faults', cow0, hv.totals().cowFaults, faults);
    auditOrThrow(hv, 'copy-on-write');

    const dst = new Uint8Array(PAGE_SIZE);
    add('read', 'whole-page read (private or shared frame)', timeRates({
      ops: pages,
      repeats,
      run: (n) => {
        for (let i = 0; i < n; i++) hv.readPage(sharer, asGfn(i % pages), 0, dst, 0, PAGE_SIZE);
      },
    }), copyBounds);
  }
  return {
    measurements: out,
    notes: [
      `hypervisor: domains of ${pages} pages (the popular-frame case: ${popular}); every write goes through Hypervisor.writePage, each benchmark checks the path taken (index misses, hits, copy-on-write faults) and ends with the hypervisor's audit.`,
    ],
  };
}
