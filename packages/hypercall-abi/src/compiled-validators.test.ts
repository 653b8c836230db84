import { DOMID_SELF, Errno, HypervisorError, InvariantError, PAGE_SIZE, Prng } from '@pagevisor/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { checkRequest, compiledValidator, compileSchema, refusalOf } from './compiled-validators.js';
import { fuzzContext, mutate, randomGarbage, validRequest } from './fuzz-buffers.js';
import { OP_LAYOUTS, type FieldType, type OpLayout } from './layout.js';
import { MAX_EXTENTS } from './op-numbers.js';
import { createRequestDecoder, decodeRequest, decodeRequestWithSchema, encodeRequest } from './request-codec.js';
import { HYPERCALL_OPS, type HypercallOp, type HypercallRequest } from './request.js';
import { formatIssues, REQUEST_SCHEMAS, validateRequest } from './schema.js';
import { crossFieldCheck, customType, valueCheck } from './schema-rules.js';

type Outcome = { readonly ok: HypercallRequest } | { readonly errno: number; readonly op: string; readonly detail: string };

function outcome(fn: () => HypercallRequest): Outcome {
  try {
    return { ok: fn() };
  } catch (e) {
    if (e instanceof HypervisorError) return { errno: e.errno, op: e.op, detail: e.detail };
    throw e;
  }
}

/** The compiled decoder as runtimes without code generation get it: builders as closures. */
const decodeWithClosures = createRequestDecoder({ codegen: false });

/**
 * Decodes `buf` by the compiled path (generated builders, then closures) and by the zod path
 * (generic layout reader, then the zod schema), expects the same outcome from all three (the
 * same request, with the same properties present, or the same errno, op and detail) and returns it.
 */
function decodeAllWays(buf: Uint8Array): Outcome {
  const reference = outcome(() => decodeRequestWithSchema(buf));
  for (const decode of [decodeRequest, decodeWithClosures]) {
    const got = outcome(() => decode(buf));
    // A deep toEqual of page-sized arrays is slow: compared by hand, and by toEqual for the diff when they differ.
    if (!sameOutcome(got, reference)) expect(got).toEqual(reference);
  }
  return reference;
}

function sameOutcome(a: Outcome, b: Outcome): boolean {
  if ('errno' in a || 'errno' in b) return 'errno' in a && 'errno' in b && a.errno === b.errno && a.op === b.op && a.detail === b.detail;
  const x = a.ok as unknown as Readonly<Record<string, unknown>>;
  const y = b.ok as unknown as Readonly<Record<string, unknown>>;
  const keys = Object.keys(x).sort();
  if (keys.join() !== Object.keys(y).sort().join()) return false;
  return keys.every((k) => {
    const [u, v] = [x[k], y[k]];
    if (u instanceof Uint8Array) return v instanceof Uint8Array && Buffer.from(u.buffer, u.byteOffset, u.byteLength).equals(v);
    if (Array.isArray(u)) return Array.isArray(v) && u.length === v.length && u.every((e, i) => e === v[i]);
    return u === v;
  });
}

/** A refusal by the schema's checks, as opposed to the layout's (lengths, reserved fields, 64-bit range, numbers). */
function isSchemaRefusal(o: Outcome): boolean {
  return 'errno' in o && o.errno === Errno.EINVAL && HYPERCALL_OPS.includes(o.op as HypercallOp) && !/reserved, must be 0|must be (<= 2\^53|within)/.test(o.detail);
}

const LAYOUTS = OP_LAYOUTS as unknown as Readonly<Record<HypercallOp, OpLayout>>;

describe('compiled validators against the zod schemas, on bytes', () => {
  it('accept and refuse exactly what the schemas do on the fuzzer\'s well-formed, mutated and garbage buffers', () => {
    const ctx = fuzzContext(1024, [1, 2]);
    const accepted = new Map<string, number>();
    const refusedBySchema = new Map<string, number>();
    const bump = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);
    let refusedByLayout = 0;
    for (let seed = 1; seed <= 120; seed++) {
      const prng = new Prng(seed);
      for (const op of HYPERCALL_OPS) {
        let buf = validRequest(prng, op, ctx);
        for (let m = 0; m <= 3; m++) {
          const o = decodeAllWays(buf);
          if ('ok' in o) bump(accepted, o.ok.op);
          else if (isSchemaRefusal(o)) bump(refusedBySchema, o.op);
          else refusedByLayout++;
          buf = mutate(prng, buf, ctx);
        }
      }
      for (let g = 0; g < 20; g++) decodeAllWays(randomGarbage(prng));
    }
    // The comparison met every op both ways, and the layout's own refusals too.
    for (const op of HYPERCALL_OPS) {
      expect(accepted.get(op) ?? 0, `${op} accepted`).toBeGreaterThan(0);
      expect(refusedBySchema.get(op) ?? 0, `${op} refused by its schema`).toBeGreaterThan(0);
    }
    expect(refusedByLayout).toBeGreaterThan(100);
  });

  it('agree on requests whose every field takes any value its wire type holds, at the schema\'s bounds most often', () => {
    for (const op of HYPERCALL_OPS) {
      fc.assert(
        fc.property(wireRequest(op), (req) => {
          decodeAllWays(encodeRequest(req, { validate: false }));
        }),
        { numRuns: 150 },
      );
    }
  });

  it('word several issues of one request in the schema\'s order, three at most, then how many more', () => {
    const cases: [HypercallRequest, string][] = [
      [
        { op: 'increase_reservation', domid: 0xffff, nrExtents: MAX_EXTENTS + 1, extentOrder: 40, memFlags: 2 },
        'increase_reservation.domid: must be <= 32752, got 65535; increase_reservation.nrExtents: must be <= 1048576, got 1048577; ' +
          'increase_reservation.extentOrder: must be <= 18, got 40; and 1 more',
      ],
      // The header carries the source domain, the struct the client's: reported in the schema's order.
      [
        { op: 'sharing_range_share', sourceDomid: 40_000, clientDomid: 50_000, firstGfn: 9, lastGfn: 3 },
        'sharing_range_share.sourceDomid: must be <= 32752, got 40000; sharing_range_share.clientDomid: must be <= 32752, got 50000; ' +
          'sharing_range_share.lastGfn: must be >= firstGfn 9, got 3',
      ],
      [
        { op: 'read_page', domid: DOMID_SELF + 1, gfn: 1, offset: 4000, length: 97 },
        'read_page.domid: must be <= 32752, got 32753; read_page.length: offset + length must be <= 4096, got 4000 + 97',
      ],
      // A custom rule's issue stops the checks across fields (as zod's does).
      [{ op: 'tmem_new_pool', domid: DOMID_SELF + 1, flags: 2 }, 'tmem_new_pool.domid: must be <= 32752, got 32753; tmem_new_pool.flags: must be 0 (ephemeral) or TMEM_POOL_PERSIST (1), got 2'],
      [{ op: 'get_sharing_freed_pages', domid: 3 }, 'get_sharing_freed_pages.domid: must be 32752 (DOMID_SELF: the op is host-wide), got 3'],
      [{ op: 'domctl_createdomain', domid: 1, maxPages: 1, gfnCount: 1, trustGroup: 0 }, 'domctl_createdomain.domid: must be 0 (the hypervisor picks the new id), got 1'],
      [{ op: 'domctl_max_mem', domid: 1, maxMemKb: 4099 }, 'domctl_max_mem.maxMemKb: must be a multiple of 4 KiB, got 4099'],
      [{ op: 'paging_prep', domid: 1, gfn: 1, data: new Uint8Array(5) }, 'paging_prep.data: must be 4096 bytes when present, got 5'],
    ];
    for (const [req, detail] of cases) {
      const o = decodeAllWays(encodeRequest(req, { validate: false }));
      expect(o).toEqual({ errno: Errno.EINVAL, op: req.op, detail });
    }
  });

  it('refuse a gfn array longer than MAX_EXTENTS whole, as zod does, and accept MAX_EXTENTS', () => {
    const gfns = Array.from({ length: MAX_EXTENTS + 1 }, (_, i) => i);
    const over = decodeAllWays(encodeRequest({ op: 'populate_physmap', domid: DOMID_SELF + 1, extentOrder: 0, memFlags: 0, gfns }, { validate: false }));
    expect(over).toEqual({
      errno: Errno.EINVAL,
      op: 'populate_physmap',
      detail: 'populate_physmap.domid: must be <= 32752, got 32753; populate_physmap.gfns: must have <= 1048576 items, got 1048577 items',
    });
    const atMax = decodeRequest(encodeRequest({ op: 'decrease_reservation', domid: 1, extentOrder: 0, gfns: gfns.slice(1) }, { validate: false }));
    expect(atMax.op === 'decrease_reservation' && atMax.gfns.length).toBe(MAX_EXTENTS);
  });
});

describe('checkRequest (the compiled validators on typed requests)', () => {
  it('accepts exactly what validateRequest accepts and throws the same errors, for values of any type', () => {
    for (const op of HYPERCALL_OPS) {
      fc.assert(
        fc.property(typedRequest(op), (req) => {
          const reference = outcome(() => validateRequest(req));
          const got = outcome(() => {
            checkRequest(req);
            return validateRequest(req);
          });
          expect(got).toEqual(reference);
        }),
        { numRuns: 120 },
      );
    }
  });

  it('refuses what is not a request as validateRequest does', () => {
    for (const v of [null, 42, 'read_page', { op: 'grant_table_op' }, { op: 'toString' }, {}]) {
      expect(outcome(() => (checkRequest(v), v as HypercallRequest))).toEqual(outcome(() => validateRequest(v)));
    }
  });

  it('reads every check from the schemas: each op\'s validator holds its schema\'s fields in order', () => {
    for (const op of HYPERCALL_OPS) {
      const v = compiledValidator(op);
      expect(v.fields.map((f) => f.prop)).toEqual(Object.keys(REQUEST_SCHEMAS[op].shape));
      expect(v.crossField).toHaveLength(REQUEST_SCHEMAS[op]._zod.def.checks?.length ?? 0);
    }
    const extentOrder = compiledValidator('populate_physmap').fields.find((f) => f.prop === 'extentOrder')!.plan;
    expect(extentOrder).toMatchObject({ kind: 'int', min: 0, max: 18 });
    expect(compiledValidator('read_page').crossField).toHaveLength(1);
  });

  it('follow zod\'s rules of which issue stops which checks, on a schema of every kind the compiler knows', () => {
    const odd = valueCheck((v: number) => (v % 2 === 1 ? undefined : `must be odd, got ${v}`));
    const short = valueCheck((v: Uint8Array) => (v.length <= 2 ? undefined : `must be at most 2 bytes, got ${v.length}`));
    const sum = crossFieldCheck(({ a, b }: { a: number; b: number }) =>
      Number.isSafeInteger(a) && Number.isSafeInteger(b) && a + b > 10 ? { path: 'b', input: b, message: `a + b must be <= 10, got ${a} + ${b}` } : undefined,
    );
    const notSeven = crossFieldCheck(({ a }: { a: number }) => (a === 7 ? { path: 'a', input: a, message: 'must not be 7' } : undefined));
    const schema = z
      .object({
        op: z.literal('read_page'),
        a: z.int().min(0).max(8).check(odd),
        // A custom rule before a range: its issue stops the range check.
        b: z.int().check(odd).max(8),
        g: z.array(z.int().min(0).max(5).check(odd)).max(3),
        d: customType((x): x is Uint8Array => x instanceof Uint8Array, 'must be a Uint8Array').check(short).optional(),
      })
      .check(sum)
      .check(notSeven);
    const v = compileSchema('read_page', schema);
    const small = fc.integer({ min: -2, max: 12 });
    const value = fc.record(
      {
        op: fc.constantFrom('read_page', 'write_page'),
        a: small,
        b: small,
        g: fc.array(fc.integer({ min: -2, max: 7 }), { maxLength: 5 }),
        d: fc.oneof(fc.nat(4).map((n) => new Uint8Array(n)), fc.constant([1])),
      },
      { requiredKeys: ['op', 'a', 'b', 'g'] },
    );
    let refused = 0;
    fc.assert(
      fc.property(value, (x) => {
        const r = schema.safeParse(x, { reportInput: true });
        const want = r.success ? undefined : formatIssues('read_page', r.error.issues);
        expect(refusalOf(v, x)).toBe(want);
        if (want !== undefined) refused++;
      }),
      { numRuns: 3000 },
    );
    expect(refused).toBeGreaterThan(1000);
  });

  it('refuses to compile a schema with a check it cannot run', () => {
    const inline = z.object({ op: z.literal('x'), a: z.int().check((ctx) => void ctx) });
    expect(() => compileSchema('read_page', inline)).toThrow(InvariantError);
    expect(() => compileSchema('read_page', inline)).toThrow(/read_page\.a: a custom check not made by valueCheck/);
    expect(() => compileSchema('read_page', z.object({ a: z.number() }))).toThrow(/read_page\.a: number format undefined/);
    expect(() => compileSchema('read_page', z.object({ a: z.string() }))).toThrow(/read_page\.a: schema type string/);
    expect(() => compileSchema('read_page', z.object({ a: z.int().gt(0) }))).toThrow(/exclusive/);
    expect(() => compileSchema('read_page', z.object({ a: z.array(z.int()).min(1) }))).toThrow(/array check min_length/);
    expect(() => compileSchema('read_page', z.object({ a: z.int() }).check((ctx) => void ctx))).toThrow(/object check not made by crossFieldCheck/);
    // Written with valueCheck, the same rule compiles and runs.
    const even = compileSchema('read_page', z.object({ a: z.int().check(valueCheck((v: number) => (v % 2 === 0 ? undefined : `must be even, got ${v}`))) }));
    expect(even.fields[0]!.plan).toMatchObject({ kind: 'int', rules: [expect.any(Function)] });
  });
});

// ---- arbitraries -------------------------------------------------------------------------------

const WIRE_MAX: { readonly [T in FieldType]: number } = { u16: 0xffff, u32: 0xffff_ffff, u64: Number.MAX_SAFE_INTEGER, i64: Number.MAX_SAFE_INTEGER };

/** The schema's bounds of `prop` in `op` and the values either side (where it has bounds). */
function edges(op: HypercallOp, prop: string): number[] {
  const plan = compiledValidator(op).fields.find((f) => f.prop === prop)?.plan;
  if (plan === undefined) return [];
  const p = plan.kind === 'array' ? plan.element : plan;
  if (p.kind !== 'int') return [];
  return [p.min, p.max].filter(Number.isFinite).flatMap((b) => [b - 1, b, b + 1]);
}

/** Any value a field of wire type `type` holds, most often one at the edges of `op`'s schema for `prop`. */
function wireValue(op: HypercallOp, prop: string, type: FieldType): fc.Arbitrary<number> {
  const max = WIRE_MAX[type];
  const special = [0, 1, 2, 4, 12, 13, 0x1_0000, DOMID_SELF, max, ...edges(op, prop)].filter((v) => v >= 0 && v <= max);
  return fc.oneof(fc.constantFrom(...special), fc.integer({ min: 0, max: Math.min(max, 0x2_0000) }), type === 'u16' || type === 'u32' ? fc.integer({ min: 0, max }) : fc.maxSafeNat());
}

/** Lengths of a byte tail around what the schemas check (a page, offset + length in a page). */
const dataLength = fc.oneof(fc.constantFrom(0, 1, 96, 97, PAGE_SIZE - 1, PAGE_SIZE, PAGE_SIZE + 1), fc.nat(PAGE_SIZE + 8));

/** A request of `op` whose values are any their wire fields hold (encodable with validate: false). */
function wireRequest(op: HypercallOp): fc.Arbitrary<HypercallRequest> {
  const layout = LAYOUTS[op];
  const fields: Record<string, fc.Arbitrary<unknown>> = { op: fc.constant(op), [layout.domidProp]: wireValue(op, layout.domidProp, 'u16') };
  for (const f of layout.request.fields) if (f.role === 'value') fields[f.prop!] = wireValue(op, f.prop!, f.type);
  const tail = layout.request.tail;
  if (tail?.element === 'u64') fields[tail.prop] = fc.array(wireValue(op, tail.prop, 'u64'), { maxLength: 4 });
  if (tail?.element === 'u8') fields[tail.prop] = dataLength.map((n) => new Uint8Array(n).fill(7));
  const keys = Object.keys(fields).filter((k) => !(tail?.optional === true && k === tail.prop));
  return fc.record(fields, { requiredKeys: keys }) as unknown as fc.Arbitrary<HypercallRequest>;
}

/** A value of any type for a typed request's property: mostly integers, at times not. */
const anyValue = fc.oneof(
  { weight: 8, arbitrary: fc.oneof(fc.integer({ min: -3, max: 0x2_0000 }), fc.constantFrom(-1, 2 ** 53 - 1, -(2 ** 53 - 1), DOMID_SELF, DOMID_SELF + 1)) },
  { weight: 1, arbitrary: fc.constantFrom(1.5, Number.NaN, Infinity, 2 ** 53, '1', null, undefined, [1], new Uint8Array(1)) },
);

/** A request of `op` whose numbers are any safe integer (negatives too), at times of the wrong type. */
function typedRequest(op: HypercallOp): fc.Arbitrary<unknown> {
  const layout = LAYOUTS[op];
  const fields: Record<string, fc.Arbitrary<unknown>> = {
    op: fc.constant(op),
    [layout.domidProp]: fc.oneof({ weight: 3, arbitrary: wireValue(op, layout.domidProp, 'u16') }, { weight: 1, arbitrary: anyValue }),
  };
  for (const f of layout.request.fields) {
    if (f.role === 'value') fields[f.prop!] = fc.oneof({ weight: 3, arbitrary: wireValue(op, f.prop!, f.type) }, { weight: 1, arbitrary: anyValue });
  }
  const tail = layout.request.tail;
  if (tail?.element === 'u64') fields[tail.prop] = fc.oneof(fc.array(fc.oneof(wireValue(op, tail.prop, 'u64'), fc.integer({ min: -2, max: 2 })), { maxLength: 5 }), anyValue);
  if (tail?.element === 'u8') fields[tail.prop] = fc.oneof({ weight: 4, arbitrary: dataLength.map((n) => new Uint8Array(n)) }, { weight: 1, arbitrary: anyValue });
  fields['extra'] = fc.constant('unknown keys are ignored');
  return fc.record(fields, { requiredKeys: Object.keys(fields).filter((k) => k !== 'extra' && k !== tail?.prop) });
}
