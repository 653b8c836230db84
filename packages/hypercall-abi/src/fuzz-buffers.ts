import {
  asDomId,
  DOMID_COW,
  DOMID_FIRST_RESERVED,
  DOMID_INVALID,
  DOMID_SELF,
  DOMID_XEN,
  Errno,
  errnoName,
  HypervisorError,
  invariant,
  isRealDomId,
  MAX_ORDER,
  PAGE_SIZE,
  type DomId,
  type Prng,
} from '@pagevisor/types';
import { OP_LAYOUTS, REQUEST_HEADER, type FieldSpec, type FieldType, type OpLayout } from './layout.js';
import * as opNumbers from './op-numbers.js';
import { decodeRequest, encodeRequest } from './request-codec.js';
import { HYPERCALL_OPS, type HypercallOp, type HypercallRequest } from './request.js';
import { decodeResponse } from './response-codec.js';

// ---- what the generators know of the host -----------------------------------------------------

/** A page a request succeeded on: the domain (DOMID_SELF resolved) and the gfn. */
export interface FuzzPage {
  readonly domid: number;
  readonly gfn: number;
}

/** A page a request got a sharing handle for. */
export interface FuzzHandle extends FuzzPage {
  readonly handle: number;
}

/**
 * What the buffer generators draw domain ids, gfns and handles from. The fuzz driver adds the
 * pages and handles of successful requests, so that later requests can follow up on them
 * (nominate then share, nominate then evict then prep); a harness may refresh `guests` and
 * `strangers` as domains come and go (from its `tick`).
 */
export interface FuzzContext {
  /** Guest-physical size of the guests in pages: most gfns are drawn below it. */
  gfnCount: number;
  /** Live domain ids: hypercall targets and, for the driver, callers. */
  guests: number[];
  /** Ids that name no domain (never created, or destroyed): targets, and callers when real ids. */
  strangers: number[];
  /** Pages of recent successful requests that carry a gfn, most recent last (the driver keeps 32). */
  pages: FuzzPage[];
  /** Sharing handles of recent successful requests, with their pages, most recent last (the driver keeps 32). */
  handles: FuzzHandle[];
}

/** A new {@link FuzzContext} with no pages or handles yet. */
export function fuzzContext(gfnCount: number, guests: readonly number[], strangers: readonly number[] = [4242, DOMID_FIRST_RESERVED - 1]): FuzzContext {
  return { gfnCount, guests: [...guests], strangers: [...strangers], pages: [], handles: [] };
}

const TWO_32 = 2 ** 32;
/** Stands for 2^64 - 1 (not representable as a number) in raw u64 writes. */
const U64_ALL_ONES = 2 ** 64;
/** Pages and handles the driver keeps for follow-up requests. */
const FOLLOW_UPS_KEPT = 32;
/** Longest data tail drawn: a tail is real bytes, so its length stays near a page (out-of-range lengths go in value fields). */
const MAX_TAIL_BYTES = PAGE_SIZE + 1;

/** Largest buffer any generator makes: a run must stay small in memory whatever it draws. */
const MAX_BUFFER_BYTES = 4 * PAGE_SIZE;

/** Boundary values of each wire type, most of them out of some op's range. */
const BOUNDARY: { readonly [T in FieldType]: readonly number[] } = {
  u16: [0, 1, 0x7fff, DOMID_FIRST_RESERVED - 1, DOMID_SELF, 0x8000, 0xfffe, 0xffff],
  u32: [0, 1, MAX_ORDER, MAX_ORDER + 1, PAGE_SIZE - 1, PAGE_SIZE, PAGE_SIZE + 1, opNumbers.MAX_EXTENTS, opNumbers.MAX_EXTENTS + 1, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff],
  u64: [0, 1, PAGE_SIZE, 0xffff_ffff, TWO_32, Number.MAX_SAFE_INTEGER, 2 ** 53, 2 ** 63, U64_ALL_ONES],
  i64: [0, 1, -1, -(2 ** 31), 0xffff_ffff, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53, -(2 ** 53), 2 ** 63, -(2 ** 63)],
};

/** Domain ids around the reserved range: DOMID_SELF is valid, the others are refused. */
const DOMID_BOUNDARY = [DOMID_FIRST_RESERVED - 1, DOMID_SELF + 1, DOMID_XEN, DOMID_COW, DOMID_INVALID, 0x7fff, 0x8000, 0xffff];

/** Every number the op-numbers module exports (advice values, flags, sub-op numbers...), for fields the generators do not recognise. */
const KNOWN_CONSTANTS: readonly number[] = [
  ...new Set(
    Object.values(opNumbers as Readonly<Record<string, unknown>>).flatMap((v) =>
      typeof v === 'number' ? [v] : typeof v === 'object' && v !== null ? Object.values(v).filter((x): x is number => typeof x === 'number') : [],
    ),
  ),
];

const LAYOUTS = OP_LAYOUTS as unknown as Readonly<Record<string, OpLayout>>;

/** Layouts by `hypercall:subop`, as the decoder groups them. */
const BY_NUMBERS = new Map<string, OpLayout[]>();
for (const op of HYPERCALL_OPS) {
  const layout = LAYOUTS[op]!;
  const key = `${layout.hypercall}:${layout.subop}`;
  const list = BY_NUMBERS.get(key);
  if (list) list.push(layout);
  else BY_NUMBERS.set(key, [layout]);
}

/** An op whose response has no body: decodes the response to a request refused before its op was known. */
const BODYLESS_OP: HypercallOp = HYPERCALL_OPS.find((op) => LAYOUTS[op]!.response.size === 0 && !LAYOUTS[op]!.response.tail) ?? HYPERCALL_OPS[0];

function pick<T>(prng: Prng, xs: readonly T[]): T {
  return xs[prng.nextInt(xs.length)]!;
}

function chance(prng: Prng, p: number): boolean {
  return prng.nextFloat() < p;
}

// ---- argument values ------------------------------------------------------------------------------

function drawDomid(prng: Prng, ctx: FuzzContext): number {
  const r = prng.nextFloat();
  if (r < 0.6 && ctx.guests.length > 0) return pick(prng, ctx.guests);
  if (r < 0.75) return DOMID_SELF;
  if (r < 0.8) return 0;
  if (r < 0.88 && ctx.strangers.length > 0) return pick(prng, ctx.strangers);
  return pick(prng, DOMID_BOUNDARY);
}

function drawGfn(prng: Prng, ctx: FuzzContext, type: FieldType): number {
  const r = prng.nextFloat();
  const n = Math.max(1, ctx.gfnCount);
  if (r < 0.75) return prng.nextInt(n);
  if (r < 0.85) return pick(prng, [0, n - 1, n, n + 1]);
  return pick(prng, BOUNDARY[type]);
}

function drawOrder(prng: Prng, type: FieldType): number {
  const r = prng.nextFloat();
  if (r < 0.7) return 0;
  if (r < 0.8) return 1;
  if (r < 0.85) return 2 + prng.nextInt(3);
  return pick(prng, [MAX_ORDER, MAX_ORDER + 1, 31, 32, ...BOUNDARY[type]]);
}

/** Counts of things: extents, pages, KiB. */
function drawCount(prng: Prng, ctx: FuzzContext, type: FieldType): number {
  const r = prng.nextFloat();
  if (r < 0.35) return 1;
  if (r < 0.5) return 0;
  if (r < 0.7) return 2 + prng.nextInt(7);
  if (r < 0.85) return pick(prng, [ctx.gfnCount, 2 * ctx.gfnCount, 4 * ctx.gfnCount, prng.nextInt(4 * ctx.gfnCount + 1)]);
  return pick(prng, BOUNDARY[type]);
}

function drawHandle(prng: Prng, ctx: FuzzContext, type: FieldType): number {
  const r = prng.nextFloat();
  if (r < 0.6 && ctx.handles.length > 0) return pick(prng, ctx.handles).handle;
  if (r < 0.8) return pick(prng, [0, 1, 2, prng.nextInt(64)]);
  return pick(prng, BOUNDARY[type]);
}

function drawFlags(prng: Prng, type: FieldType): number {
  const r = prng.nextFloat();
  if (r < 0.5) return 0;
  if (r < 0.7) return pick(prng, [opNumbers.MEM_FLAGS_KNOWN, 1, 2, 3]);
  if (r < 0.85) return (1 << prng.nextInt(32)) >>> 0;
  return pick(prng, BOUNDARY[type]);
}

function drawOffset(prng: Prng, type: FieldType): number {
  const r = prng.nextFloat();
  if (r < 0.4) return 0;
  if (r < 0.6) return prng.nextInt(PAGE_SIZE);
  if (r < 0.85) return pick(prng, [1, 8, PAGE_SIZE - 8, PAGE_SIZE - 1]);
  return pick(prng, [PAGE_SIZE, PAGE_SIZE + 1, ...BOUNDARY[type]]);
}

/** A byte count within one page, most often fitting after `offset`. */
function drawLength(prng: Prng, offset: unknown, type: FieldType): number {
  const room = typeof offset === 'number' && offset >= 0 && offset <= PAGE_SIZE ? PAGE_SIZE - offset : PAGE_SIZE;
  const r = prng.nextFloat();
  if (r < 0.3) return room;
  if (r < 0.5) return Math.min(room, 1 + prng.nextInt(16));
  if (r < 0.65) return prng.nextInt(room + 1);
  if (r < 0.8) return pick(prng, [0, 1, room + 1, PAGE_SIZE]);
  return pick(prng, BOUNDARY[type]);
}

/** Fields the generators do not recognise (new ops): small numbers, the ABI's constants, boundaries. */
function drawOther(prng: Prng, ctx: FuzzContext, type: FieldType): number {
  const r = prng.nextFloat();
  if (r < 0.25) return 0;
  if (r < 0.4) return prng.nextInt(4);
  if (r < 0.65) return pick(prng, KNOWN_CONSTANTS);
  if (r < 0.8) return prng.nextInt(Math.max(1, ctx.gfnCount));
  return pick(prng, BOUNDARY[type]);
}

/** Numbers a field's doc names in parentheses, e.g. `MADV_DONTNEED (4)`: the values it accepts. */
const DOC_CONSTANTS = new Map<string, number[]>();

function docConstants(f: FieldSpec): readonly number[] {
  let values = DOC_CONSTANTS.get(f.doc);
  if (values === undefined) {
    values = [...f.doc.matchAll(/\((\d+)\)/g)].map((m) => Number(m[1]));
    DOC_CONSTANTS.set(f.doc, values);
  }
  return values;
}

/** A value for field `f`, chosen by what its doc and property name say it carries. */
function drawValue(prng: Prng, ctx: FuzzContext, f: FieldSpec, args: Readonly<Record<string, unknown>>): number {
  const named = docConstants(f);
  if (named.length > 0 && chance(prng, 0.5)) return pick(prng, named);
  const p = f.prop!.toLowerCase();
  const type = f.type;
  if (p.includes('order')) return drawOrder(prng, type);
  if (p.includes('handle')) return drawHandle(prng, ctx, type);
  if (p.includes('domid') || p.includes('domain')) return drawDomid(prng, ctx);
  if (/count|^nr|pages|kib|^max|claim/.test(p)) return drawCount(prng, ctx, type);
  if (/gfn|pfn|start/.test(p)) return drawGfn(prng, ctx, type);
  if (p.includes('offset')) return drawOffset(prng, type);
  if (/length|len$|size/.test(p)) return drawLength(prng, args['offset'], type);
  if (p.includes('flags')) return drawFlags(prng, type);
  return drawOther(prng, ctx, type);
}

function drawGfnList(prng: Prng, ctx: FuzzContext, extentOrder: unknown): number[] {
  const r = prng.nextFloat();
  const n = r < 0.7 ? 1 : r < 0.85 ? 0 : r < 0.95 ? 2 + prng.nextInt(3) : 5 + prng.nextInt(36);
  const order = typeof extentOrder === 'number' && extentOrder >= 0 && extentOrder <= 8 ? extentOrder : 0;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    // Mostly aligned to the order, or the hypervisor refuses every extent before looking further.
    out[i] = chance(prng, 0.85) ? prng.nextInt(Math.max(1, ctx.gfnCount >> order)) << order : drawGfn(prng, ctx, 'u64');
  }
  return out;
}

/** Page contents come from a few patterns, so that pages of different domains often match. */
function drawData(prng: Prng, length: number): Uint8Array {
  invariant(length <= MAX_TAIL_BYTES, `fuzz: data tail of ${length} bytes asked for`);
  const out = new Uint8Array(length);
  const r = prng.nextFloat();
  if (r < 0.35) return out;
  if (r < 0.85) {
    out.fill(pick(prng, [1, 0xaa, 0xff]));
    if (r >= 0.75 && length > 0) out[prng.nextInt(length)] = 0x55;
    return out;
  }
  prng.fillBytes(out);
  return out;
}

function dataLength(prng: Prng, layout: OpLayout, args: Readonly<Record<string, unknown>>): number {
  const hasOffset = layout.request.fields.some((f) => f.prop === 'offset');
  if (!hasOffset) return chance(prng, 0.9) ? PAGE_SIZE : pick(prng, [0, 1, PAGE_SIZE - 1, PAGE_SIZE + 1]);
  return Math.min(drawLength(prng, args['offset'], 'u32'), MAX_TAIL_BYTES);
}

/**
 * Points some requests at pages earlier requests succeeded on, so that sequences happen: a
 * `<x>Handle` field gets a handle seen with its `<x>Gfn` and `<x>Domid` (nominate, then share or
 * add_physmap); a request of a `domid` and a `gfn` gets a page that worked (nominate, evict, prep).
 */
function followUp(prng: Prng, layout: OpLayout, ctx: FuzzContext, args: Record<string, unknown>): void {
  let paired = false;
  for (const f of layout.request.fields) {
    const prop = f.prop;
    if (f.role !== 'value' || !prop || !/handle$/i.test(prop) || ctx.handles.length === 0 || !chance(prng, 0.7)) continue;
    const h = pick(prng, ctx.handles);
    const prefix = prop.slice(0, -'handle'.length);
    args[prop] = h.handle;
    args[prefix ? `${prefix}Gfn` : 'gfn'] = h.gfn;
    args[prefix ? `${prefix}Domid` : 'domid'] = h.domid;
    paired = true;
  }
  if (!paired && layout.domidProp === 'domid' && 'gfn' in args && ctx.pages.length > 0 && chance(prng, 0.5)) {
    // Mostly the latest page: sequences on one page (nominate, evict, prep) need it.
    const p = chance(prng, 0.7) ? ctx.pages[ctx.pages.length - 1]! : pick(prng, ctx.pages);
    args['domid'] = p.domid;
    args['gfn'] = p.gfn;
  }
}

/** Arguments of a request of `layout`: header domid, value fields and tail, as an (unvalidated) request object. */
function drawArgs(prng: Prng, layout: OpLayout, ctx: FuzzContext): Record<string, unknown> {
  const args: Record<string, unknown> = { op: layout.op, [layout.domidProp]: drawDomid(prng, ctx) };
  for (const f of layout.request.fields) {
    if (f.role === 'value') args[f.prop!] = drawValue(prng, ctx, f, args);
  }
  followUp(prng, layout, ctx, args);
  const tail = layout.request.tail;
  if (tail) {
    if (tail.element === 'u64') args[tail.prop] = drawGfnList(prng, ctx, args['extentOrder']);
    else if (!tail.optional || chance(prng, 0.6)) args[tail.prop] = drawData(prng, dataLength(prng, layout, args));
  }
  return args;
}

// ---- raw writes ----------------------------------------------------------------------------------

function mod(v: number, m: number): number {
  return ((v % m) + m) % m;
}

/** Writes any number as `type`, wrapping what does not fit (2^64 writes all ones). */
function writeRaw(view: DataView, offset: number, type: FieldType, v: number): void {
  if (type === 'u16') view.setUint16(offset, mod(v, 0x1_0000), true);
  else if (type === 'u32') view.setUint32(offset, mod(v, TWO_32), true);
  else if (v >= U64_ALL_ONES) {
    view.setUint32(offset, 0xffff_ffff, true);
    view.setUint32(offset + 4, 0xffff_ffff, true);
  } else {
    const hi = Math.floor(v / TWO_32);
    view.setUint32(offset, mod(v - hi * TWO_32, TWO_32), true);
    view.setUint32(offset + 4, mod(hi, TWO_32), true);
  }
}

function readRaw(view: DataView, offset: number, type: FieldType): number {
  if (type === 'u16') return view.getUint16(offset, true);
  if (type === 'u32') return view.getUint32(offset, true);
  return view.getUint32(offset + 4, true) * TWO_32 + view.getUint32(offset, true);
}

/** Writes `args` through `layout` without validation: what encodeRequest would write, for any values. */
function encodeRaw(layout: OpLayout, args: Readonly<Record<string, unknown>>): Uint8Array {
  const tail = layout.request.tail;
  const items = tail ? (args[tail.prop] as ArrayLike<number> | undefined) : undefined;
  const n = items?.length ?? 0;
  const payloadLength = layout.request.size + (tail ? n * (tail.element === 'u64' ? 8 : 1) : 0);
  const buf = new Uint8Array(REQUEST_HEADER.size + payloadLength);
  const view = new DataView(buf.buffer);
  const header: Record<string, number> = {
    hypercall: layout.hypercall,
    subop: layout.subop,
    domid: args[layout.domidProp] as number,
    payloadLength,
  };
  writeFields(view, 0, REQUEST_HEADER.fields, header, n);
  const base = REQUEST_HEADER.size;
  writeFields(view, base, layout.request.fields, args, n);
  if (tail && items) {
    const at = base + layout.request.size;
    if (tail.element === 'u8') buf.set(items as Uint8Array, at);
    else for (let i = 0; i < n; i++) writeRaw(view, at + 8 * i, 'u64', items[i]!);
  }
  return buf;
}

function writeFields(view: DataView, base: number, fields: readonly FieldSpec[], values: Readonly<Record<string, unknown>>, count: number): void {
  for (const f of fields) {
    let v = 0;
    if (f.role === 'value') v = (values[f.prop!] as number | undefined) ?? 0;
    else if (f.role === 'count') v = count;
    else if (f.role === 'selector') v = f.value!;
    writeRaw(view, base + f.offset, f.type, v);
  }
}

// ---- generators ------------------------------------------------------------------------------------

/**
 * A well-formed request for `op` (or a random op): header numbers, selector and every length
 * agree with OP_LAYOUTS, so it never fails to decode with EFAULT or ENOSYS. Argument values come
 * from interesting sets (small gfns below `ctx.gfnCount`, the guests, DOMID_SELF, handles seen,
 * PAGE_SIZE, MAX_ORDER, 2^32 - 1, 2^53 - 1 and beyond); the request is built with encodeRequest
 * when they are in range, else written raw through the layout (and then decodes with EINVAL).
 */
export function validRequest(prng: Prng, op: HypercallOp | undefined, ctx: FuzzContext): Uint8Array {
  const layout = LAYOUTS[op ?? pick(prng, HYPERCALL_OPS)]!;
  // The schema has rules the layout does not state (an exact domid, an enumeration): draw again a
  // few times so that most requests reach the handler, and keep the last draw raw otherwise.
  const attempts = chance(prng, 0.8) ? 4 : 1;
  let args: Record<string, unknown> = {};
  for (let a = 0; a < attempts; a++) {
    args = drawArgs(prng, layout, ctx);
    try {
      return encodeRequest(args as unknown as HypercallRequest);
    } catch (e) {
      if (!(e instanceof HypervisorError)) throw e;
    }
  }
  return encodeRaw(layout, args);
}

/** The layouts a buffer's header names (several when a selector tells them apart), or none. */
function layoutsOf(buf: Uint8Array): OpLayout[] {
  if (buf.length < REQUEST_HEADER.size) return [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return BY_NUMBERS.get(`${view.getUint32(0, true)}:${view.getUint32(4, true)}`) ?? [];
}

function headerField(name: string): FieldSpec {
  const f = REQUEST_HEADER.fields.find((x) => x.name === name);
  if (!f) throw new Error(`REQUEST_HEADER has no ${name} field`);
  return f;
}

const PAYLOAD_LENGTH = headerField('payload_length');

function fixPayloadLength(buf: Uint8Array): void {
  if (buf.length < REQUEST_HEADER.size) return;
  new DataView(buf.buffer, buf.byteOffset, buf.byteLength).setUint32(PAYLOAD_LENGTH.offset, buf.length - REQUEST_HEADER.size, true);
}

function resized(buf: Uint8Array, length: number, prng: Prng): Uint8Array {
  invariant(length <= MAX_BUFFER_BYTES, `fuzz: buffer of ${length} bytes asked for`);
  const out = new Uint8Array(length);
  out.set(buf.subarray(0, Math.min(length, buf.length)));
  if (length > buf.length && chance(prng, 0.5)) prng.fillBytes(out.subarray(buf.length));
  return out;
}

/** One mutation of `buf` (a copy the caller owns); may return a new array of another length. */
function mutateOnce(prng: Prng, buf: Uint8Array, ctx: FuzzContext | undefined): Uint8Array {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const layouts = layoutsOf(buf);
  const layout = layouts.length > 0 ? pick(prng, layouts) : undefined;
  const h = REQUEST_HEADER.size;
  switch (prng.nextInt(12)) {
    case 0: {
      const flips = 1 + prng.nextInt(3);
      for (let i = 0; i < flips && buf.length > 0; i++) buf[prng.nextInt(buf.length)]! ^= 1 << prng.nextInt(8);
      return buf;
    }
    case 1:
      if (buf.length > 0) buf[prng.nextInt(buf.length)] = pick(prng, [0, 1, 0x7f, 0x80, 0xfe, 0xff]);
      return buf;
    case 2: {
      // A header field to a boundary value: hypercall, subop, domid, pad or payload_length.
      if (buf.length < h) return buf;
      const f = pick(prng, REQUEST_HEADER.fields);
      writeRaw(view, f.offset, f.type, chance(prng, 0.8) ? pick(prng, BOUNDARY[f.type]) : prng.nextU32());
      return buf;
    }
    case 3: {
      // Another op's numbers over this payload: its decoder reads this op's bytes.
      if (buf.length < h) return buf;
      const other = LAYOUTS[pick(prng, HYPERCALL_OPS)]!;
      view.setUint32(0, other.hypercall, true);
      view.setUint32(4, other.subop, true);
      const sel = other.request.fields.find((f) => f.role === 'selector');
      if (sel && chance(prng, 0.5) && buf.length >= h + sel.offset + 4) writeRaw(view, h + sel.offset, sel.type, sel.value!);
      return buf;
    }
    case 4:
      return buf.slice(0, prng.nextInt(buf.length + 1));
    case 5:
      return resized(buf, buf.length + pick(prng, [1, 2, 7, 8, 16, 1 + prng.nextInt(64)]), prng);
    case 6: {
      if (buf.length < h) return buf;
      const delta = pick(prng, [-8, -1, 1, 8, PAGE_SIZE]);
      writeRaw(view, PAYLOAD_LENGTH.offset, 'u32', view.getUint32(PAYLOAD_LENGTH.offset, true) + delta);
      return buf;
    }
    case 7: {
      // The selector to another op's, a near value or anything.
      const sel = layout?.request.fields.find((f) => f.role === 'selector');
      if (!layout || !sel || buf.length < h + sel.offset + 4) return buf;
      const others = layouts.map((l) => l.request.fields.find((f) => f.role === 'selector')?.value ?? 0);
      writeRaw(view, h + sel.offset, sel.type, pick(prng, [...others, sel.value! + 1, sel.value! + 64, prng.nextU32(), 0xffff_ffff]));
      return buf;
    }
    case 8: {
      // A payload field to a boundary value of its type.
      const fields = layout?.request.fields ?? [];
      if (fields.length === 0) return buf;
      const f = pick(prng, fields);
      if (buf.length < h + f.offset + (f.type === 'u16' ? 2 : f.type === 'u32' ? 4 : 8)) return buf;
      const v = ctx && f.type === 'u16' && chance(prng, 0.3) ? drawDomid(prng, ctx) : pick(prng, BOUNDARY[f.type]);
      writeRaw(view, h + f.offset, f.type, v);
      return buf;
    }
    case 9: {
      // The tail count changed; half of the time the tail and payload_length follow.
      const tail = layout?.request.tail;
      const count = layout?.request.fields.find((f) => f.role === 'count');
      if (!layout || !tail || !count || buf.length < h + layout.request.size) return buf;
      const size = tail.element === 'u64' ? 8 : 1;
      const now = readRaw(view, h + count.offset, count.type);
      const want = pick(prng, [0, 1, now + 1, Math.max(0, now - 1), PAGE_SIZE / size, PAGE_SIZE / size + 1, ...BOUNDARY[count.type]]);
      writeRaw(view, h + count.offset, count.type, want);
      if (want * size > 2 * PAGE_SIZE || chance(prng, 0.5)) return buf;
      const out = resized(buf, h + layout.request.size + want * size, prng);
      fixPayloadLength(out);
      return out;
    }
    case 10: {
      if (buf.length === 0) return buf;
      const at = prng.nextInt(buf.length);
      prng.fillBytes(buf.subarray(at, at + 1 + prng.nextInt(16)));
      return buf;
    }
    default: {
      // The header domid to a reserved id, a stranger or another guest.
      if (buf.length < h) return buf;
      const f = headerField('domid');
      writeRaw(view, f.offset, f.type, ctx && chance(prng, 0.5) ? drawDomid(prng, ctx) : pick(prng, DOMID_BOUNDARY));
      return buf;
    }
  }
}

/**
 * A mutated copy of `buf` (which is left as it is): one to three of bit flips, bytes set to
 * boundary values, header fields (hypercall, subop, domid, pad, payload_length) set to boundary
 * values or another op's numbers, truncation, extension, selector changes, payload fields set to
 * boundary values, tail counts changed (with or without the tail following) and random bytes.
 * Half of the results get a payload_length that matches their length again, so that they reach
 * the op's own decoding. `ctx`, when given, supplies domain ids.
 */
export function mutate(prng: Prng, buf: Uint8Array, ctx?: FuzzContext): Uint8Array {
  let out: Uint8Array = buf.slice();
  const n = chance(prng, 0.7) ? 1 : 2 + prng.nextInt(2);
  for (let i = 0; i < n; i++) out = mutateOnce(prng, out, ctx);
  if (chance(prng, 0.5)) fixPayloadLength(out);
  // Some mutations write what was there (a field to its own value): try again, a few times.
  for (let i = 0; i < 8 && sameBytes(out, buf); i++) out = mutateOnce(prng, out, ctx);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Random bytes, from empty to a little over a page: sometimes plain noise, often behind a header
 * with a real (or near) hypercall and subop and a payload_length that matches, so that the noise
 * reaches the op decoders.
 */
export function randomGarbage(prng: Prng): Uint8Array {
  const r = prng.nextFloat();
  const length = chance(prng, 0.05) ? prng.nextInt(PAGE_SIZE + 64) : prng.nextInt(72);
  const buf = new Uint8Array(r < 0.3 ? length : Math.max(length, REQUEST_HEADER.size));
  prng.fillBytes(buf);
  if (r < 0.3) return buf;
  const view = new DataView(buf.buffer);
  const layout = LAYOUTS[pick(prng, HYPERCALL_OPS)]!;
  view.setUint32(0, r < 0.85 ? layout.hypercall : pick(prng, [0, 1, 13, 0xfff, 0x1003, prng.nextU32()]), true);
  view.setUint32(4, r < 0.85 ? layout.subop : pick(prng, [2, 5, 21, 23, 0xffff_ffff, prng.nextU32()]), true);
  if (chance(prng, 0.6)) view.setUint16(8, pick(prng, [DOMID_SELF, 0, 1, 2]), true);
  if (chance(prng, 0.6)) view.setUint16(10, 0, true);
  if (chance(prng, 0.8)) fixPayloadLength(buf);
  return buf;
}

// ---- the driver --------------------------------------------------------------------------------

/** What the driver calls: a hypervisor's hypercall gate and audit. */
export interface FuzzTarget {
  /** Issues the hypercall in `request` as `caller` (a real domain id); returns the encoded response. */
  hypercall(caller: DomId, request: Uint8Array): Uint8Array;
  /** Every broken invariant, in words; empty when the state is sound. */
  audit(): string[];
}

/** How one call (or audit) went wrong. */
export interface FuzzFailure {
  /**
   * `throw`: an exception escaped the hypercall; `response`: the response does not decode;
   * `errno`: rc < 0 is not a known errno; `rc`: the rc disagrees with the request (a request
   * refused while decoding must get that errno); `changed`: a refused call changed the snapshot;
   * `audit`: the audit found broken invariants (or threw); `decoder`: decodeRequest itself threw
   * something other than HypervisorError.
   */
  readonly kind: 'throw' | 'response' | 'errno' | 'rc' | 'changed' | 'audit' | 'decoder';
  /** Index of the call (0-based, within this run); for `audit`, of the last call before it (or of the call the tick came before). */
  readonly call: number;
  /** The op the request decoded to, `(undecoded)`, or `(tick)` for a failure of the harness's tick. */
  readonly op: string;
  readonly caller: number;
  /** The request, hex. For `audit`: the last request of the batch. */
  readonly hex: string;
  /** What went wrong (error message and stack head, audit lines, snapshots...). */
  readonly message: string;
}

/** Outcomes of one op (or of `(undecoded)` requests). */
export interface FuzzOpStats {
  calls: number;
  /** Calls with rc >= 0. */
  ok: number;
  /** Refused calls by errno name. */
  refused: Record<string, number>;
}

/** Counts of a fuzz run; {@link mergeFuzzStats} adds runs up. */
export interface FuzzStats {
  calls: number;
  /** Calls by generator. */
  valid: number;
  mutated: number;
  garbage: number;
  /** Requests the decoder refused (never reached a handler). */
  malformed: number;
  /** Refused calls (rc < 0), decoding refusals included, by errno name. */
  refusals: Record<string, number>;
  /** Outcomes by op; requests that did not decode count under `(undecoded)`. */
  byOp: Record<string, FuzzOpStats>;
  audits: number;
  /** Refused calls whose before/after snapshots were compared. */
  snapshotsCompared: number;
  failures: FuzzFailure[];
}

/** Op name under which {@link FuzzStats.byOp} counts requests that did not decode. */
export const UNDECODED = '(undecoded)';
/** Op name of a failure of the harness's tick: an exception, or (with `batch` 1) an audit failure right after it. */
export const TICK = '(tick)';

/** Empty {@link FuzzStats}. */
export function newFuzzStats(): FuzzStats {
  return { calls: 0, valid: 0, mutated: 0, garbage: 0, malformed: 0, refusals: {}, byOp: {}, audits: 0, snapshotsCompared: 0, failures: [] };
}

function add(into: Record<string, number>, key: string, n = 1): void {
  into[key] = (into[key] ?? 0) + n;
}

/** Adds `from` into `into`. */
export function mergeFuzzStats(into: FuzzStats, from: FuzzStats): void {
  into.calls += from.calls;
  into.valid += from.valid;
  into.mutated += from.mutated;
  into.garbage += from.garbage;
  into.malformed += from.malformed;
  into.audits += from.audits;
  into.snapshotsCompared += from.snapshotsCompared;
  for (const [k, v] of Object.entries(from.refusals)) add(into.refusals, k, v);
  for (const [op, s] of Object.entries(from.byOp)) {
    const t = (into.byOp[op] ??= { calls: 0, ok: 0, refused: {} });
    t.calls += s.calls;
    t.ok += s.ok;
    for (const [k, v] of Object.entries(s.refused)) add(t.refused, k, v);
  }
  into.failures.push(...from.failures);
}

/** Options of {@link fuzzHypervisor}. */
export interface FuzzOptions {
  /** Domain ids, gfns and handles to draw from; the driver adds the handles it sees. */
  readonly ctx: FuzzContext;
  /** Calls between audits (default 1000); the run also ends with one. With 1, the state is also audited after each tick. */
  readonly batch?: number;
  /** Ops requests are drawn for (default every op): a request that decodes to another op is drawn again. */
  readonly ops?: readonly HypercallOp[];
  /** Weights of valid, mutated and garbage requests (default 0.4, 0.45, 0.15). */
  readonly mix?: { readonly valid: number; readonly mutated: number; readonly garbage: number };
  /**
   * A digest of the state (e.g. JSON of the hypervisor's totals). Taken before a call and compared
   * after when the call is refused: a refusal must change nothing. Default none.
   */
  readonly snapshot?: () => string;
  /** Fraction of calls snapshotted (default 1). */
  readonly snapshotRate?: number;
  /** Called every `tickEvery` calls with the calls done: run a scanner, refresh `ctx`, bound the domains. */
  readonly tick?: (callsDone: number) => void;
  /** Calls between ticks (default 100); independent of `batch`, so a replay with batch 1 makes the same calls. */
  readonly tickEvery?: number;
  /** Failures after which the run stops (default 1: after an escape the state is suspect). */
  readonly maxFailures?: number;
  /** Counts to add to (default new ones). */
  readonly stats?: FuzzStats;
}

/** Default calls between audits. */
export const DEFAULT_FUZZ_BATCH = 1000;
const DEFAULT_MIX = { valid: 0.4, mutated: 0.45, garbage: 0.15 };

/** Lowercase hex of `buf`. */
export function toHex(buf: Uint8Array): string {
  let s = '';
  for (let i = 0; i < buf.length; i++) s += buf[i]!.toString(16).padStart(2, '0');
  return s;
}

/** The bytes of a hex string written by {@link toHex}. */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function describeError(e: unknown): string {
  if (e instanceof Error) return (e.stack ?? `${e.name}: ${e.message}`).split('\n').slice(0, 6).join('\n');
  return String(e);
}

/** Keeps the page (and handle) of a successful request for follow-ups. */
function remember(ctx: FuzzContext, caller: number, req: HypercallRequest, handle: number | undefined): void {
  const r = req as unknown as Readonly<Record<string, unknown>>;
  const gfn = r['gfn'];
  const domid = r['domid'];
  if (typeof gfn !== 'number' || typeof domid !== 'number') return;
  const page = { domid: domid === DOMID_SELF ? caller : domid, gfn };
  ctx.pages.push(page);
  if (ctx.pages.length > FOLLOW_UPS_KEPT) ctx.pages.shift();
  if (handle === undefined) return;
  ctx.handles.push({ ...page, handle });
  if (ctx.handles.length > FOLLOW_UPS_KEPT) ctx.handles.shift();
}

/**
 * The caller: the control domain, the request's own target (a guest acting on itself, the only
 * other call a guest may make), any guest, or an id that names no domain.
 */
function pickCaller(prng: Prng, ctx: FuzzContext, req: HypercallRequest | undefined): number {
  const r = prng.nextFloat();
  if (r < 0.35 || ctx.guests.length === 0) return 0;
  const target = (req as unknown as Readonly<Record<string, unknown>> | undefined)?.[req ? LAYOUTS[req.op]!.domidProp : ''];
  if (r < 0.6 && typeof target === 'number' && isRealDomId(target)) return target;
  if (r < 0.9) return pick(prng, ctx.guests);
  const real = ctx.strangers.filter(isRealDomId);
  return real.length > 0 ? pick(prng, real) : 0;
}

/**
 * Fuzzes `target`'s hypercall gate with `calls` requests drawn from `prng`: valid, mutated and
 * garbage buffers (see `mix`), issued as the control domain, a guest or a domain id that names no
 * domain. Every call must return a response that decodes (with the request's op when it decoded),
 * whose rc < 0 is a known errno, the decoder's own errno when the request did not decode; no
 * exception may escape; a refused call must leave `snapshot()` unchanged; and `target.audit()`,
 * run every `batch` calls and at the end, must be empty. Returns the counts, failures included
 * (the run stops after `maxFailures`).
 */
export function fuzzHypervisor(target: FuzzTarget, prng: Prng, calls: number, opts: FuzzOptions): FuzzStats {
  const { ctx } = opts;
  const stats = opts.stats ?? newFuzzStats();
  const batch = opts.batch ?? DEFAULT_FUZZ_BATCH;
  const mix = opts.mix ?? DEFAULT_MIX;
  const mixTotal = mix.valid + mix.mutated + mix.garbage;
  const snapshotRate = opts.snapshotRate ?? 1;
  const tickEvery = opts.tickEvery ?? 100;
  const maxFailures = opts.maxFailures ?? 1;
  const ops = opts.ops;
  invariant(ops === undefined || ops.length > 0, 'fuzzHypervisor: ops is empty');
  const skipped = ops && new Set<string>(HYPERCALL_OPS.filter((op) => !ops.includes(op)));
  const drawable: readonly HypercallOp[] = ops ?? HYPERCALL_OPS;
  // Half of the ops are drawn uniformly, half by need: weight 1 / (1 + successes so far)^2, so
  // that ops which rarely succeed (they need a sequence before them) are tried more often.
  const needWeights = new Float64Array(drawable.length);
  let needTotal = 0;
  const reweigh = (): void => {
    needTotal = 0;
    for (let k = 0; k < drawable.length; k++) {
      needWeights[k] = 1 / (1 + (stats.byOp[drawable[k]!]?.ok ?? 0)) ** 2;
      needTotal += needWeights[k]!;
    }
  };
  const drawOp = (): HypercallOp => {
    if (chance(prng, 0.5)) return pick(prng, drawable);
    let x = prng.nextFloat() * needTotal;
    for (let k = 0; k < drawable.length; k++) {
      x -= needWeights[k]!;
      if (x < 0) return drawable[k]!;
    }
    return drawable[drawable.length - 1]!;
  };
  reweigh();
  const failuresBefore = stats.failures.length;
  let last: { op: string; caller: number; buf: Uint8Array } = { op: UNDECODED, caller: 0, buf: new Uint8Array(0) };

  /** Records `f`; true when the run must stop. */
  const failed = (f: FuzzFailure): boolean => {
    stats.failures.push(f);
    return stats.failures.length - failuresBefore >= maxFailures;
  };

  /** Audits after call `call` (or after the tick before it); true when the run must stop. */
  const audit = (call: number, afterTick = false): boolean => {
    stats.audits++;
    let problems: string[];
    try {
      problems = target.audit();
    } catch (e) {
      problems = [`audit threw: ${describeError(e)}`];
    }
    if (problems.length === 0) return false;
    const where = afterTick ? { op: TICK, caller: 0, hex: '' } : { op: last.op, caller: last.caller, hex: toHex(last.buf) };
    return failed({ kind: 'audit', call, ...where, message: problems.slice(0, 10).join('\n') });
  };

  /** One call and its checks; true when the run must stop. */
  const callOnce = (i: number): boolean => {
    let kind: 'valid' | 'mutated' | 'garbage';
    let buf: Uint8Array;
    let req: HypercallRequest | undefined;
    let decodeError: HypervisorError | undefined;
    // A request that decodes to an op left out (a mutation can turn one op into another) is drawn again.
    for (let attempt = 0; ; attempt++) {
      const r = prng.nextFloat() * mixTotal;
      kind = r < mix.valid ? 'valid' : r < mix.valid + mix.mutated ? 'mutated' : 'garbage';
      if (kind === 'garbage') buf = randomGarbage(prng);
      else buf = validRequest(prng, drawOp(), ctx);
      if (kind === 'mutated') buf = mutate(prng, buf, ctx);
      req = undefined;
      decodeError = undefined;
      try {
        req = decodeRequest(buf);
      } catch (e) {
        if (!(e instanceof HypervisorError)) {
          stats.calls++;
          return failed({ kind: 'decoder', call: i, op: UNDECODED, caller: 0, hex: toHex(buf), message: describeError(e) });
        }
        decodeError = e;
      }
      if (!req || !skipped || !skipped.has(req.op) || attempt >= 64) break;
    }
    stats[kind]++;
    const caller = pickCaller(prng, ctx, req);
    const snap = opts.snapshot !== undefined && (snapshotRate >= 1 || prng.nextFloat() < snapshotRate);
    stats.calls++;
    last = { op: UNDECODED, caller, buf };
    const fail = (kind: FuzzFailure['kind'], op: string, message: string): boolean =>
      failed({ kind, call: i, op, caller, hex: toHex(buf), message });
    const op = req?.op ?? UNDECODED;
    last.op = op;
    const opStats = (stats.byOp[op] ??= { calls: 0, ok: 0, refused: {} });
    opStats.calls++;
    if (decodeError) stats.malformed++;

    const before = snap ? opts.snapshot!() : '';
    let response: Uint8Array;
    try {
      response = target.hypercall(asDomId(caller), buf);
    } catch (e) {
      return fail('throw', op, describeError(e));
    }
    let rc: number;
    let handle: number | undefined;
    try {
      const res = decodeResponse(req?.op ?? BODYLESS_OP, response);
      rc = res.rc;
      handle = res.handle;
    } catch (e) {
      return fail('response', op, `${describeError(e)}\nresponse ${toHex(response)}`);
    }
    if (rc >= 0) {
      if (decodeError) return fail('rc', op, `request refused by the decoder (${decodeError.message}) but rc ${rc}`);
      opStats.ok++;
      remember(ctx, caller, req!, handle);
      return false;
    }
    const name = errnoName(-rc);
    add(stats.refusals, name);
    add(opStats.refused, name);
    if (!Object.hasOwn(Errno, name)) return fail('errno', op, `rc ${rc} is not a known errno`);
    if (decodeError && -rc !== decodeError.errno) {
      return fail('rc', op, `the decoder refuses with ${decodeError.errnoName} (${decodeError.message}) but rc is ${rc} (${name})`);
    }
    if (!snap) return false;
    stats.snapshotsCompared++;
    const after = opts.snapshot!();
    if (after === before) return false;
    const why = decodeError ? `by the decoder: ${decodeError.message}` : 'by the handler';
    return fail('changed', op, `refused with ${name} (${why}) but the state changed:\nbefore ${before}\nafter  ${after}`);
  };

  let stopped = false;
  for (let i = 0; i < calls && !stopped; i++) {
    if (i % 64 === 0) reweigh();
    if (i > 0 && i % tickEvery === 0 && opts.tick) {
      try {
        opts.tick(i);
      } catch (e) {
        // The harness's own work (a scanner wake, destroying a domain) broke on the state the calls left.
        if (failed({ kind: 'throw', call: i, op: TICK, caller: 0, hex: '', message: describeError(e) })) break;
      }
      // Auditing after every call (a replay to find the call that broke the state): the tick may be the culprit too.
      if (batch === 1 && audit(i, true)) break;
    }
    stopped = callOnce(i) || ((i + 1) % batch === 0 && audit(i));
  }
  if (!stopped && calls % batch !== 0) audit(calls - 1);
  return stats;
}

/** A short multi-line summary of `stats`: calls, outcomes by op and errno, failures. */
export function formatFuzzStats(stats: FuzzStats): string {
  const lines = [
    `calls ${stats.calls} (valid ${stats.valid}, mutated ${stats.mutated}, garbage ${stats.garbage}); malformed (refused by the decoder) ${stats.malformed}`,
    `audits ${stats.audits}; refusals with snapshot compared ${stats.snapshotsCompared}`,
    `refusals by errno: ${Object.entries(stats.refusals)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    'by op (calls / ok / refused by errno):',
  ];
  for (const [op, s] of Object.entries(stats.byOp).sort((a, b) => a[0].localeCompare(b[0]))) {
    const refused = Object.entries(s.refused)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(`  ${op.padEnd(26)} ${String(s.calls).padStart(8)} ${String(s.ok).padStart(8)}  ${refused}`);
  }
  lines.push(`failures ${stats.failures.length}`);
  for (const f of stats.failures) lines.push(`  [${f.kind}] call ${f.call} op ${f.op} caller ${f.caller}\n    request ${f.hex}\n    ${f.message.replace(/\n/g, '\n    ')}`);
  return lines.join('\n');
}
