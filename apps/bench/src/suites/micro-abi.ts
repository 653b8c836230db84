import { decodeRequest, decodeResponse, encodeRequest, fuzzContext, HYPERCALL_OPS, validRequest, type HypercallOp, type HypercallRequest } from '@pagevisor/hypercall-abi';
import { Hypervisor } from '@pagevisor/hypervisor';
import { asGfn, DOMID_SELF, HypervisorError, PAGE_SIZE, Prng, type DomId } from '@pagevisor/types';
import { measurement, type Measurement } from '../measurement.js';
import { timeRates } from '../measure.js';
import { throwProblems, type SuiteContext } from '../suite-context.js';

/** Seeds tried per op before giving up on drawing a valid request. */
const MAX_DRAWS = 500;

/**
 * A representative valid request of `op`: the first of the fuzzer's well-formed requests (seeds
 * 1, 2, ...) that decodes, i.e. whose values are all in range; undefined when none does.
 */
export function representativeRequest(op: HypercallOp): HypercallRequest | undefined {
  const ctx = fuzzContext(1024, [1, 2]);
  for (let seed = 1; seed <= MAX_DRAWS; seed++) {
    const buf = validRequest(new Prng(seed), op, ctx);
    try {
      return decodeRequest(buf);
    } catch (e) {
      if (!(e instanceof HypervisorError)) throw e;
    }
  }
  return undefined;
}

/** One pass: the rate of every op that has a representative request, in ops/s. */
export type AbiPass = Partial<Record<HypercallOp, number>>;

/**
 * Measures every op once in this process: first all of them in turn for a while (`warmMs`), so
 * that the validation code every op shares is optimised before any op is timed, then each op
 * (its own warm-up, then one sample of at least `sampleMs`).
 */
export function measureAbiPass(warmMs: number, sampleMs: number): AbiPass {
  const reqs = HYPERCALL_OPS.map((op) => [op, representativeRequest(op)] as const).filter((x): x is readonly [HypercallOp, HypercallRequest] => x[1] !== undefined);
  let sink = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < warmMs) for (const [, req] of reqs) for (let i = 0; i < 32; i++) sink += decodeRequest(encodeRequest(req, UNVALIDATED)).op.length;
  const pass: AbiPass = {};
  for (const [op, req] of reqs) {
    pass[op] = timeRates({
      ops: 256,
      repeats: 1,
      minRepeatMs: sampleMs,
      run: (n) => {
        for (let i = 0; i < n; i++) sink += decodeRequest(encodeRequest(req, UNVALIDATED)).op.length;
      },
    })[0]!;
  }
  if (sink === 0) throw new Error('ABI bench: nothing decoded');
  return pass;
}

/** How HypercallClient encodes its typed requests: the dispatcher validates them once, decoded. */
const UNVALIDATED = { validate: false } as const;

/**
 * The hypercall ABI: per op of HYPERCALL_OPS, one request encoded as HypercallClient encodes
 * it (its fields checked to fit, not validated) and decoded back (which validates it, once), per operation; one pass
 * over every op per repeat. V8 optimises the shared validation code differently from one
 * process to the next, by up to 2x: the runner's fresh process per repeat (see run-bench.ts)
 * puts that into the spread.
 */
export function benchAbi(ctx: SuiteContext): { measurements: Measurement[]; notes: string[] } {
  ctx.log(`micro: hypercall-abi (${HYPERCALL_OPS.length} ops)`);
  const [warmMs, sampleMs] = ctx.quick ? [50, 2] : [500, 30];
  const passes: AbiPass[] = [];
  for (let r = 0; r < ctx.repeats; r++) passes.push(measureAbiPass(warmMs, sampleMs));
  const out: Measurement[] = [];
  const missing: string[] = [];
  for (const op of HYPERCALL_OPS) {
    const samples = passes.map((p) => p[op]);
    const req = representativeRequest(op);
    if (req === undefined || samples.some((x) => x === undefined)) {
      missing.push(op);
      continue;
    }
    const bytes = encodeRequest(req).length;
    out.push(measurement({ suite: 'micro', group: 'hypercall-abi', key: op, name: `${op} (${bytes} B)`, unit: 'ops/s', better: 'higher', samples: samples as number[] }));
  }
  const notes = [
    `hypercall-abi: one op = encodeRequest as HypercallClient does it (validate: false: each value checked to fit its field, then the binary layout) + decodeRequest (layout, then the zod validation, the one per hypercall) of one representative valid request, the first the fuzzer's validRequest draws that decodes; a pass warms up ${warmMs} ms over every op, then times each op for ${sampleMs} ms.`,
  ];
  if (missing.length > 0) notes.push(`hypercall-abi: no valid request drawn in ${MAX_DRAWS} seeds for ${missing.join(', ')}: not measured.`);
  return { measurements: out, notes };
}

/** Keys (in group `hypercall-abi`) of the small hypercalls timed through the dispatcher. */
export const ABI_DISPATCH_KEY = {
  populate: 'dispatch-populate-physmap-1',
  currentReservation: 'dispatch-current-reservation',
  readPage: 'dispatch-read-page-64',
} as const;

/** Ids of those measurements, for the targets (>= 1,000,000 ops/s each). */
export const ABI_DISPATCH_ID = {
  populate: `micro.hypercall-abi.${ABI_DISPATCH_KEY.populate}`,
  currentReservation: `micro.hypercall-abi.${ABI_DISPATCH_KEY.currentReservation}`,
  readPage: `micro.hypercall-abi.${ABI_DISPATCH_KEY.readPage}`,
} as const;

/** Bytes the read_page row reads. */
const READ_BYTES = 64;

/** rc of a response, from its bytes (the low 32 bits: every rc timed here is small). */
function rcOf(res: Uint8Array): number {
  return (res[0]! | (res[1]! << 8) | (res[2]! << 16) | (res[3]! << 24)) >>> 0;
}

/** Throws unless `res`, a response to `op`, has rc `rc` (with the hypervisor's message when it failed). */
function expectRc(op: HypercallOp, res: Uint8Array, rc: number): void {
  const got = decodeResponse(op, res);
  if (got.rc !== rc) throw new Error(`ABI dispatch bench: ${op} answered rc ${got.rc}${got.message ? ` (${got.message})` : ''}, expected ${rc}`);
}

/**
 * Small hypercalls end to end, from bytes, on a real Hypervisor (default options: inline dedup):
 * a request buffer as a guest's HypercallClient encodes it goes through `hv.hypercall` (the
 * dispatcher decodes and validates it, the hypervisor runs it, the response is encoded) and
 * comes back as response bytes. populate_physmap of one gfn (each call a new gfn, so each
 * populates; the domain is emptied between repeats, untimed), current_reservation, and
 * read_page of 64 bytes of a written page. Every response's rc is checked, and the audit after.
 */
export async function benchAbiDispatch(ctx: SuiteContext): Promise<{ measurements: Measurement[]; notes: string[] }> {
  ctx.log('micro: hypercall-abi (small hypercalls through the dispatcher)');
  const pages = ctx.quick ? 4096 : 65_536;
  const minRepeatMs = ctx.quick ? 5 : 50;
  // A guest-physical space is at most 16 x the machine's frames; populating maps no frame of its own.
  const hv = await Hypervisor.create({ frames: Math.max(1024, pages / 8) });
  const out: Measurement[] = [];
  const add = (key: string, name: string, samples: number[]): void => {
    out.push(measurement({ suite: 'micro', group: 'hypercall-abi', key, name, unit: 'ops/s', better: 'higher', samples }));
  };
  const UNCHECKED = { validate: false } as const;

  // populate_physmap of 1 gfn: a new gfn each call (each maps the zero frame under inline dedup).
  {
    const dom: DomId = hv.createDomain({ maxPages: pages, gfnCount: pages });
    const requests = Array.from({ length: pages }, (_, g) => encodeRequest({ op: 'populate_physmap', domid: DOMID_SELF, extentOrder: 0, memFlags: 0, gfns: [g] }, UNCHECKED));
    const gfns = Array.from({ length: pages }, (_, g) => g);
    let populated = 0;
    let done = 0;
    let calls = 0;
    add(ABI_DISPATCH_KEY.populate, `populate_physmap, 1 gfn, through the dispatcher (${requests[0]!.length} B)`, timeRates({
      ops: pages,
      repeats: ctx.repeats,
      setup: () => {
        if (populated > 0) hv.decreaseReservation(dom, gfns.slice(0, populated));
        populated = 0;
      },
      run: (n) => {
        for (let i = 0; i < n; i++) done += rcOf(hv.hypercall(dom, requests[populated + i]!));
        populated += n;
        calls += n;
      },
    }));
    // Each call answered rc 1 (a failure's rc, -errno, reads as a large number here).
    if (done !== calls || hv.currentReservation(dom) !== populated) {
      throw new Error(`ABI dispatch bench: ${calls} populate_physmap calls answered ${done} extents in all, and the domain holds ${hv.currentReservation(dom)} pages, expected ${populated}`);
    }
    hv.destroyDomain(dom);
  }

  // current_reservation and read_page on a domain holding a few pages, one written.
  {
    const held = 16;
    const dom = hv.createDomain({ maxPages: held });
    hv.populatePhysmap(dom, Array.from({ length: held }, (_, g) => g));
    const content = new Uint8Array(PAGE_SIZE).map((_, i) => (i * 7 + 3) & 0xff);
    hv.writePage(dom, asGfn(5), 0, content, 0, PAGE_SIZE);

    const current = encodeRequest({ op: 'current_reservation', domid: DOMID_SELF }, UNCHECKED);
    expectRc('current_reservation', hv.hypercall(dom, current), held);
    let sum = 0;
    let calls = 0;
    add(ABI_DISPATCH_KEY.currentReservation, `current_reservation through the dispatcher (${current.length} B)`, timeRates({
      ops: 4096,
      repeats: ctx.repeats,
      minRepeatMs,
      run: (n) => {
        for (let i = 0; i < n; i++) sum += rcOf(hv.hypercall(dom, current));
        calls += n;
      },
    }));
    if (sum !== calls * held) throw new Error('ABI dispatch bench: current_reservation answered other than the pages held');

    const read = encodeRequest({ op: 'read_page', domid: DOMID_SELF, gfn: 5, offset: 128, length: READ_BYTES }, UNCHECKED);
    const first = hv.hypercall(dom, read);
    expectRc('read_page', first, 0);
    const data = decodeResponse('read_page', first).data!;
    if (!data.every((b, i) => b === content[128 + i])) throw new Error('ABI dispatch bench: read_page read other bytes than were written');
    let bytes = 0;
    let failed = 0;
    add(ABI_DISPATCH_KEY.readPage, `read_page of ${READ_BYTES} B through the dispatcher (${read.length} B)`, timeRates({
      ops: 4096,
      repeats: ctx.repeats,
      minRepeatMs,
      run: (n) => {
        for (let i = 0; i < n; i++) {
          const res = hv.hypercall(dom, read);
          bytes += res.length;
          failed |= res[7]!; // the sign byte of rc
        }
      },
    }));
    if (failed !== 0 || bytes === 0) throw new Error('ABI dispatch bench: a read_page failed');
  }
  throwProblems('audit after the ABI dispatch benchmark', hv.audit());
  const notes = [
    'hypercall-abi dispatch: one op = hv.hypercall(domain, request bytes) on a Hypervisor with default options (inline dedup): decodeRequest (layout, then the validator compiled from the zod schema), DOMID_SELF resolved, the hypervisor\'s handler, encodeResponse; requests encoded beforehand as HypercallClient encodes them. populate_physmap populates a new gfn each call (the zero frame under inline dedup; the domain emptied between repeats, untimed); read_page reads 64 bytes of a written page. Target: >= 1,000,000 ops/s each.',
  ];
  return { measurements: out, notes };
}
