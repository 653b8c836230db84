import { HypervisorError, invariant, InvariantError } from '@pagevisor/types';
import { compiledValidator, refuse, type CompiledValidator, type Rule, type ValuePlan } from './compiled-validators.js';
import { FIELD_SIZE, OP_LAYOUTS, REQUEST_HEADER, type OpLayout } from './layout.js';
import { Hypercall, XenMem } from './op-numbers.js';
import type { HypercallOp, HypercallRequest } from './request.js';
import { validateRequest } from './schema.js';
import {
  checkEncodable,
  compileStruct,
  getField,
  readField,
  readFields,
  putField,
  readStruct,
  readTail,
  W_U16,
  W_U32,
  WIRE_TYPE,
  writeFields,
  type StructPlan,
} from './struct-codec.js';

/** Op name used in errors raised before the operation is known. */
const UNKNOWN_OP = 'hypercall';

/** Layouts by hypercall number, then subop; several share a subop when a selector tells them apart. */
const BY_NUMBER = new Map<number, Map<number, OpLayout[]>>();
for (const layout of Object.values(OP_LAYOUTS) as OpLayout[]) {
  let subops = BY_NUMBER.get(layout.hypercall);
  if (!subops) BY_NUMBER.set(layout.hypercall, (subops = new Map()));
  const list = subops.get(layout.subop);
  if (list) list.push(layout);
  else subops.set(layout.subop, [layout]);
}

/** Options of {@link encodeRequest}. */
export interface EncodeOptions {
  /**
   * Validate the request against its schema first (default true). An in-process caller whose
   * request is a typed {@link HypercallRequest} passes false: the dispatcher validates what it
   * decodes, so each hypercall is validated once. Values are then only checked to fit their
   * fields (no value is written wrapped).
   */
  readonly validate?: boolean;
}

/**
 * Encodes `req` as a request: the 16-byte header, then the op's struct (see OP_LAYOUTS).
 * Validates first (unless `opts.validate` is false): throws HypervisorError(EINVAL) naming the
 * field when an argument is out of range.
 */
export function encodeRequest(req: HypercallRequest, opts: EncodeOptions = {}): Uint8Array {
  const enc = typeof req === 'object' && req !== null ? ENCODERS.get(req.op) : undefined;
  let valid: Readonly<Record<string, unknown>>;
  if (opts.validate === false && enc !== undefined) {
    valid = req as unknown as Readonly<Record<string, unknown>>;
    checkEncodable(enc.plan, valid, req.op, req.op);
    const domid = valid[enc.layout.domidProp];
    if (typeof domid !== 'number' || !Number.isInteger(domid) || domid < 0 || domid > 0xffff) {
      throw new HypervisorError('EINVAL', req.op, `${req.op}.${enc.layout.domidProp}: must be a domain id (0 to 65535), got ${String(domid)}`);
    }
  } else {
    valid = validateRequest(req) as unknown as Readonly<Record<string, unknown>>;
  }
  if (enc === undefined) throw new InvariantError(`encodeRequest: no layout for op ${req.op}`);
  const { layout, plan } = enc;
  // Only an optional tail may be absent; validation has already refused a missing required one.
  const tail = layout.request.tail === undefined ? undefined : (valid[layout.request.tail.prop] as ArrayLike<number> | undefined);
  const n = tail === undefined ? 0 : tail.length;
  const payloadLength = plan.size + n * plan.tailElementSize;
  const buf = new Uint8Array(HEADER_PLAN.size + payloadLength);
  const h = HEADER_PLAN;
  putField(buf, h.offsets[H_HYPERCALL_FIELD]!, h.types[H_HYPERCALL_FIELD]!, layout.hypercall);
  putField(buf, h.offsets[H_SUBOP_FIELD]!, h.types[H_SUBOP_FIELD]!, layout.subop);
  putField(buf, h.offsets[H_DOMID_FIELD]!, h.types[H_DOMID_FIELD]!, valid[layout.domidProp] as number);
  putField(buf, h.offsets[H_PAYLOAD_LENGTH_FIELD]!, h.types[H_PAYLOAD_LENGTH_FIELD]!, payloadLength);
  writeFields(plan, buf, h.size, valid, n, tail);
  return buf;
}

/**
 * Decodes and validates a request. Throws HypervisorError, having changed nothing:
 * - EFAULT when the buffer is shorter than the header, or its length, the header's
 *   `payload_length` and the op struct's own lengths disagree (truncation, trailing bytes);
 * - ENOSYS for an unknown hypercall, subop, sharing or paging op number;
 * - EINVAL when a value is out of range, a 64-bit value exceeds 2^53 - 1 or a reserved field is
 *   not 0; the detail names the field, e.g. `populate_physmap.extentOrder: must be <= 18, got 40`.
 *
 * The values are validated once, by the op's validator compiled from its zod schema
 * (compiled-validators.ts): the same checks and the same refusals as the schema, without zod.
 * A `write_page` or `paging_prep` request's `data` is a view of `buf`, not a copy.
 */
export function decodeRequest(buf: Uint8Array): HypercallRequest {
  return decodeWith(DECODERS, buf);
}

/**
 * {@link decodeRequest} validating with the zod schemas (`validateRequest`) instead of the
 * compiled validators, and reading the layouts field object by field object: the reference the
 * compiled path is held equal to (same requests, same values, same errors). Slower.
 */
export function decodeRequestWithSchema(buf: Uint8Array): HypercallRequest {
  const hsize = REQUEST_HEADER.size;
  if (buf.length < hsize) {
    const detail = `request is ${buf.length} bytes, shorter than the ${hsize}-byte header`;
    throw new HypervisorError('EFAULT', UNKNOWN_OP, detail);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const header: Record<string, unknown> = {};
  readStruct(view, buf, 0, hsize, REQUEST_HEADER, UNKNOWN_OP, 'header', header);
  const hypercall = header['hypercall'] as number;
  const subop = header['subop'] as number;
  const payloadLength = header['payloadLength'] as number;

  const subops = BY_NUMBER.get(hypercall);
  if (!subops) {
    const detail = `unknown hypercall number ${hypercall} (0x${hypercall.toString(16)})`;
    throw new HypervisorError('ENOSYS', UNKNOWN_OP, detail);
  }
  const group = groupName(hypercall, subop);
  const candidates = subops.get(subop);
  if (!candidates) throw new HypervisorError('ENOSYS', group, `unknown subop ${subop}`);
  if (payloadLength !== buf.length - hsize) {
    throw new HypervisorError(
      'EFAULT',
      group,
      `header.payload_length is ${payloadLength} but ${buf.length - hsize} bytes follow the header`,
    );
  }
  const layout = selectLayout(candidates, view, hsize, payloadLength, group);

  const out: Record<string, unknown> = { op: layout.op, [layout.domidProp]: header['domid'] };
  readStruct(view, buf, hsize, payloadLength, layout.request, layout.op, layout.op, out);
  return validateRequest(out);
}

// ---- the compiled decoders -------------------------------------------------------------------

/** Builds an op's request object from the header's domid, the struct's values and its tail. */
type Build = (domid: number, values: readonly number[], tail: number[] | Uint8Array | undefined) => HypercallRequest;

/** One op's decoder: its layout flattened, the checks of its schema by value, and its builder. */
interface RequestDecoder {
  readonly layout: OpLayout;
  readonly op: HypercallOp;
  readonly plan: StructPlan;
  /**
   * The checks of each value as numbers, slot 0 being the header's domid and slot 1 + i the
   * struct's value i: inclusive bounds, and the custom rules (undefined when none).
   */
  readonly min: Float64Array;
  readonly max: Float64Array;
  readonly rules: readonly (readonly Rule[] | undefined)[];
  /** The tail's plan (gfns or data), when it has one. */
  readonly tail: ValuePlan | undefined;
  readonly crossField: CompiledValidator['crossField'];
  readonly validator: CompiledValidator;
  readonly build: Build;
  /** The selector's value, for ops that share a hypercall and subop. */
  readonly selector: number;
}

/** Decoders by hypercall number, then subop; the selector's offset and type, and the candidates. */
interface SubopEntry {
  readonly decoders: readonly RequestDecoder[];
  /** The selector field shared by the candidates (when more than one). */
  readonly selectorOffset: number;
  readonly selectorType: number;
  readonly selectorName: string;
}

type Decoders = ReadonlyMap<number, ReadonlyMap<number, SubopEntry>>;

const HEADER_PLAN = compileStruct(REQUEST_HEADER);
const H_HYPERCALL = HEADER_PLAN.props.indexOf('hypercall');
const H_SUBOP = HEADER_PLAN.props.indexOf('subop');
const H_DOMID = HEADER_PLAN.props.indexOf('domid');
const H_PAYLOAD_LENGTH = HEADER_PLAN.props.indexOf('payloadLength');
invariant(Math.min(H_HYPERCALL, H_SUBOP, H_DOMID, H_PAYLOAD_LENGTH) >= 0, 'REQUEST_HEADER lacks a field the decoder reads');
/** The same header fields by field index, for the encoder. */
const headerFieldIndex = (prop: string): number => REQUEST_HEADER.fields.findIndex((f) => f.prop === prop);
const H_HYPERCALL_FIELD = headerFieldIndex('hypercall');
const H_SUBOP_FIELD = headerFieldIndex('subop');
const H_DOMID_FIELD = headerFieldIndex('domid');
const H_PAYLOAD_LENGTH_FIELD = headerFieldIndex('payloadLength');

/** Each op's request struct, flattened once, for the encoder. */
const ENCODERS = new Map<string, { readonly layout: OpLayout; readonly plan: StructPlan }>(
  (Object.values(OP_LAYOUTS) as OpLayout[]).map((layout) => [layout.op, { layout, plan: compileStruct(layout.request) }]),
);

/**
 * Values read by the decoder: the header's, then the struct's. One array for every call
 * (decoding runs no code of anyone else's before it has built the request from it).
 */
const HEADER_VALUES: number[] = new Array<number>(HEADER_PLAN.props.length).fill(0);
const VALUES: number[] = new Array<number>(1 + Math.max(...Object.values(OP_LAYOUTS).map((l) => l.request.fields.length))).fill(0);

/**
 * Whether this runtime compiles code from strings. Where it does not (a page whose Content
 * Security Policy has no 'unsafe-eval', Cloudflare Workers, ...) the builders are closures.
 */
const CODEGEN = ((): boolean => {
  try {
    return new Function('return true')() === true;
  } catch {
    return false;
  }
})();

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * The function building an op's request object from decoded values. With `codegen` it is made
 * with `new Function` from the layout table, as an object literal of the op's properties: V8
 * then creates every request of an op with one shape in a few nanoseconds, where the closure
 * (storing each property by name, a store whose key changes from op to op) takes about ten
 * times as long, which at the 1 M hypercalls/s the ABI targets is most of a small request's
 * budget. The source holds only names from the layout table (checked to be identifiers) and
 * the op's name as a JSON string literal: nothing that a request carries.
 */
function makeBuild(layout: OpLayout, codegen: boolean): Build {
  const props = [layout.domidProp, ...compileStruct(layout.request).props];
  const tailProp = layout.request.tail?.prop;
  for (const p of [...props, ...(tailProp === undefined ? [] : [tailProp])]) {
    invariant(IDENTIFIER.test(p), `${layout.op}: property ${p} is not an identifier`);
  }
  if (codegen) {
    // Slot 0 is the header's domid, slot i the struct's value i - 1.
    const fields = [`op: ${JSON.stringify(layout.op)}`, `${props[0]!}: domid`, ...props.slice(1).map((p, i) => `${p}: v[${i + 1}]`)];
    const body =
      tailProp === undefined
        ? `return { ${fields.join(', ')} };`
        : // An absent optional tail leaves its property unset (not undefined).
          `return t === undefined ? { ${fields.join(', ')} } : { ${[...fields, `${tailProp}: t`].join(', ')} };`;
    return new Function('domid', 'v', 't', body) as Build;
  }
  const op = layout.op;
  return (domid, v, t) => {
    const out: Record<string, unknown> = { op };
    out[props[0]!] = domid;
    for (let i = 1; i < props.length; i++) out[props[i]!] = v[i];
    if (tailProp !== undefined && t !== undefined) out[tailProp] = t;
    return out as unknown as HypercallRequest;
  };
}

function compileDecoder(layout: OpLayout, codegen: boolean): RequestDecoder {
  const plan = compileStruct(layout.request);
  const validator = compiledValidator(layout.op);
  const planOf = (prop: string): ValuePlan => {
    const field = validator.fields.find((f) => f.prop === prop);
    invariant(field, `${layout.op}: the schema has no ${prop}, which the layout carries`);
    return field.plan;
  };
  const props = [layout.domidProp, ...plan.props];
  const min = new Float64Array(props.length);
  const max = new Float64Array(props.length);
  const rules: (readonly Rule[] | undefined)[] = [];
  props.forEach((prop, slot) => {
    const p = planOf(prop);
    invariant(p.kind === 'int' && !p.optional, `${layout.op}.${prop}: the layout carries a number, the schema ${p.kind}`);
    min[slot] = p.min;
    max[slot] = p.max;
    rules.push(p.rules.length > 0 ? p.rules : undefined);
  });
  const tailSpec = layout.request.tail;
  const tail = tailSpec === undefined ? undefined : planOf(tailSpec.prop);
  if (tailSpec !== undefined) {
    const ok = tail!.optional === (tailSpec.optional === true) && tail!.kind === (tailSpec.element === 'u8' ? 'bytes' : 'array');
    invariant(ok, `${layout.op}.${tailSpec.prop}: the layout's tail and the schema disagree`);
  }
  // Every property of the schema but op is carried by the layout, so none is left unchecked.
  const carried = new Set(['op', ...props, ...(tailSpec === undefined ? [] : [tailSpec.prop])]);
  for (const f of validator.fields) invariant(carried.has(f.prop), `${layout.op}.${f.prop}: in the schema but not in the layout`);
  const selectorField = layout.request.fields.find((f) => f.role === 'selector');
  return {
    layout,
    op: layout.op,
    plan,
    min,
    max,
    rules,
    tail,
    crossField: validator.crossField,
    validator,
    build: makeBuild(layout, codegen),
    selector: selectorField?.value ?? -1,
  };
}

function compileDecoders(codegen: boolean): Decoders {
  const byNumber = new Map<number, Map<number, SubopEntry>>();
  for (const [hypercall, subops] of BY_NUMBER) {
    const entries = new Map<number, SubopEntry>();
    for (const [subop, layouts] of subops) {
      const selector = layouts[0]!.request.fields.find((f) => f.role === 'selector');
      // Layouts sharing numbers must share the selector's place; the layout test checks it.
      invariant(layouts.length === 1 || selector, `hypercall ${hypercall} subop ${subop}: ops sharing a subop have no selector field`);
      entries.set(subop, {
        decoders: layouts.map((l) => compileDecoder(l, codegen)),
        selectorOffset: selector?.offset ?? 0,
        selectorType: selector === undefined ? W_U32 : WIRE_TYPE[selector.type],
        selectorName: selector?.name ?? '',
      });
    }
    byNumber.set(hypercall, entries);
  }
  return byNumber;
}

const DECODERS = compileDecoders(CODEGEN);

/**
 * A decoder like {@link decodeRequest}, its builders made with `new Function` or, with
 * `codegen: false`, as closures (what runtimes that forbid code generation get). For tests.
 */
export function createRequestDecoder(opts: { readonly codegen: boolean }): (buf: Uint8Array) => HypercallRequest {
  const decoders = opts.codegen && CODEGEN ? DECODERS : compileDecoders(opts.codegen);
  return (buf) => decodeWith(decoders, buf);
}

function decodeWith(decoders: Decoders, buf: Uint8Array): HypercallRequest {
  const hsize = HEADER_PLAN.size;
  const length = buf.length;
  if (length < hsize) {
    throw new HypervisorError('EFAULT', UNKNOWN_OP, `request is ${length} bytes, shorter than the ${hsize}-byte header`);
  }
  const h = HEADER_VALUES;
  readFields(HEADER_PLAN, buf, 0, hsize, UNKNOWN_OP, 'header', h, 0);
  const hypercall = h[H_HYPERCALL]!;
  const subop = h[H_SUBOP]!;
  const domid = h[H_DOMID]!;
  const payloadLength = h[H_PAYLOAD_LENGTH]!;
  const subops = decoders.get(hypercall);
  if (subops === undefined) {
    throw new HypervisorError('ENOSYS', UNKNOWN_OP, `unknown hypercall number ${hypercall} (0x${hypercall.toString(16)})`);
  }
  const entry = subops.get(subop);
  if (entry === undefined) throw new HypervisorError('ENOSYS', groupName(hypercall, subop), `unknown subop ${subop}`);
  if (payloadLength !== length - hsize) {
    const detail = `header.payload_length is ${payloadLength} but ${length - hsize} bytes follow the header`;
    throw new HypervisorError('EFAULT', groupName(hypercall, subop), detail);
  }
  const d = entry.decoders.length === 1 ? entry.decoders[0]! : selectDecoder(entry, buf, hsize, payloadLength, hypercall, subop);
  const v = VALUES;
  v[0] = domid;
  const n = readFields(d.plan, buf, hsize, payloadLength, d.op, d.op, v, 1);
  const tail = readTail(d.plan, buf, hsize, n, d.op, d.op);
  // The schema's checks, as numbers; on any doubt, the compiled validator words the refusal.
  let sound = true;
  const slots = d.min.length;
  for (let i = 0; i < slots; i++) {
    const x = v[i]!;
    if (x < d.min[i]! || x > d.max[i]!) sound = false;
    const rules = d.rules[i];
    if (rules !== undefined) for (const rule of rules) if (rule(x) !== undefined) sound = false;
  }
  if (tail !== undefined && !tailSound(d.tail!, tail)) sound = false;
  const req = d.build(domid, v, tail);
  if (sound) for (const rule of d.crossField) if (rule(req as unknown as Readonly<Record<string, unknown>>) !== undefined) sound = false;
  if (!sound) refuse(d.validator, req as unknown as Readonly<Record<string, unknown>>);
  return req;
}

/** Whether a decoded tail passes its plan's checks (a gfn array's length and elements, a buffer's rules). */
function tailSound(plan: ValuePlan, tail: number[] | Uint8Array): boolean {
  if (plan.kind === 'bytes') {
    if (!plan.type.test(tail)) return false;
    for (const rule of plan.rules) if (rule(tail) !== undefined) return false;
    return true;
  }
  if (plan.kind !== 'array' || !Array.isArray(tail) || tail.length > plan.maxItems) return false;
  const e = plan.element;
  // The decoder reads safe integers >= 0: bounds wider than that need no look at the elements.
  const bounded = e.min > 0 || e.max < Number.MAX_SAFE_INTEGER;
  if (!bounded && e.rules.length === 0) return true;
  for (const x of tail) {
    if (x < e.min || x > e.max) return false;
    for (const rule of e.rules) if (rule(x) !== undefined) return false;
  }
  return true;
}

/** The decoder among those sharing a hypercall and subop, by its selector field (sharing and paging op). */
function selectDecoder(entry: SubopEntry, buf: Uint8Array, base: number, length: number, hypercall: number, subop: number): RequestDecoder {
  const type = entry.selectorType;
  if (length < entry.selectorOffset + (type === W_U16 ? 2 : type === W_U32 ? 4 : 8)) {
    throw new HypervisorError('EFAULT', groupName(hypercall, subop), `payload is ${length} bytes, too short for its ${entry.selectorName} field`);
  }
  const value = getField(buf, base + entry.selectorOffset, type);
  for (const d of entry.decoders) if (d.selector === value) return d;
  throw new HypervisorError('ENOSYS', groupName(hypercall, subop), `unknown ${entry.selectorName} ${value}`);
}

/** Picks the layout among those sharing a hypercall and subop by its selector field (sharing and paging op). */
function selectLayout(
  candidates: readonly OpLayout[],
  view: DataView,
  base: number,
  length: number,
  group: string,
): OpLayout {
  if (candidates.length === 1) return candidates[0]!;
  const selector = candidates[0]!.request.fields.find((f) => f.role === 'selector');
  // Layouts sharing numbers must share the selector's place; the layout test checks it.
  invariant(selector, `${group}: ops sharing a subop have no selector field`);
  if (length < selector.offset + FIELD_SIZE[selector.type]) {
    throw new HypervisorError('EFAULT', group, `payload is ${length} bytes, too short for its ${selector.name} field`);
  }
  const value = readField(view, base + selector.offset, selector.type);
  const layout = candidates.find((c) => c.request.fields.some((f) => f.role === 'selector' && f.value === value));
  if (!layout) throw new HypervisorError('ENOSYS', group, `unknown ${selector.name} ${value}`);
  return layout;
}

/** Name of a hypercall (or of the sharing or paging sub-hypercall) for errors before the op is known. */
function groupName(hypercall: number, subop: number): string {
  if (hypercall === Hypercall.memory_op && subop === XenMem.sharing_op) return 'sharing_op';
  if (hypercall === Hypercall.memory_op && subop === XenMem.paging_op) return 'paging_op';
  for (const [name, value] of Object.entries(Hypercall)) if (value === hypercall) return name;
  return UNKNOWN_OP;
}
