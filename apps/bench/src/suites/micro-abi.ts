import { decodeRequest, encodeRequest, fuzzContext, HYPERCALL_OPS, validRequest, type HypercallOp, type HypercallRequest } from '@pagevisor/hypercall-abi';
import { HypervisorError, Prng } from '@pagevisor/types';
import { measurement, type Measurement } from '../measurement.js';
import { timeRates } from '../measure.js';
import type { SuiteContext } from '../suite-context.js';

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
