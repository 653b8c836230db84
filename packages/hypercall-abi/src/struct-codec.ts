import { HypervisorError } from '@pagevisor/types';
import type { FieldRole, FieldType, StructLayout } from './layout.js';

const TWO_32 = 0x1_0000_0000;
/** High 32-bit half of Number.MAX_SAFE_INTEGER (2^53 - 1). */
const MAX_SAFE_HI = 0x1f_ffff;

/** Bytes of a struct whose tail has `tailLength` elements. */
export function structSize(layout: StructLayout, tailLength: number): number {
  return layout.size + (layout.tail ? tailLength * tailElementSize(layout) : 0);
}

function tailElementSize(layout: StructLayout): number {
  return layout.tail?.element === 'u64' ? 8 : 1;
}

/** Integers each field type holds as the codec writes it (64-bit ones: safe integers). */
const FIELD_RANGE: { readonly [T in FieldType]: readonly [number, number] } = {
  u16: [0, 0xffff],
  u32: [0, 0xffff_ffff],
  u64: [0, Number.MAX_SAFE_INTEGER],
  i64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/**
 * Reads `layout` from exactly `length` bytes at `base` into `out`; returns the tail length.
 * The generic reader, field object by field object: the compiled plans below read the same
 * bytes with the same refusals (`decodeRequestWithSchema`, the reference path, reads with this).
 * Throws HypervisorError EFAULT when the bytes do not hold exactly the struct and its tail, and
 * EINVAL when a reserved field is not 0 or a 64-bit value is not a safe integer. Errors carry
 * `op` and name the field as `prefix.field`. A `u8` tail is a view of `bytes`, not a copy; an
 * empty optional tail leaves its property unset.
 */
export function readStruct(
  view: DataView,
  bytes: Uint8Array,
  base: number,
  length: number,
  layout: StructLayout,
  op: string,
  prefix: string,
  out: Record<string, unknown>,
): number {
  if (length < layout.size) {
    throw new HypervisorError('EFAULT', op, `${prefix}: needs ${layout.size} bytes, got ${length}`);
  }
  let n = 0;
  // Lengths first, so that a short buffer is EFAULT whatever its fields hold.
  for (const f of layout.fields) if (f.role === 'count') n = readField(view, base + f.offset, f.type);
  const tail = layout.tail;
  const want = structSize(layout, n);
  if (want !== length) {
    const what = tail ? `${layout.size} + ${n} x ${tailElementSize(layout)} bytes (${tail.name})` : `${want} bytes`;
    throw new HypervisorError('EFAULT', op, `${prefix}: needs ${what}, got ${length} bytes`);
  }
  for (const f of layout.fields) {
    const v = readField(view, base + f.offset, f.type);
    const name = f.prop ?? f.name;
    if (Number.isNaN(v)) throw outOfRange(op, `${prefix}.${name}`, view, base + f.offset, f.type);
    if (f.role === 'value') out[f.prop!] = v;
    else if (f.role === 'zero' && v !== 0) {
      throw new HypervisorError('EINVAL', op, `${prefix}.${f.name}: reserved, must be 0, got ${v}`);
    } else if (f.role === 'selector' && v !== f.value) {
      // Callers pick the layout by its selector, so a mismatch here is their bug.
      throw new HypervisorError('ENOSYS', op, `${prefix}.${f.name}: expected ${f.value}, got ${v}`);
    }
  }
  if (!tail) return 0;
  if (n === 0 && tail.optional) return 0;
  const at = base + layout.size;
  if (tail.element === 'u8') {
    out[tail.prop] = bytes.subarray(at, at + n);
  } else {
    const values = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const v = readField(view, at + 8 * i, 'u64');
      if (Number.isNaN(v)) throw outOfRange(op, `${prefix}.${tail.prop}[${i}]`, view, at + 8 * i, 'u64');
      values[i] = v;
    }
    out[tail.prop] = values;
  }
  return n;
}

/** Reads a little-endian `type` at `offset`; NaN when a 64-bit value is not a safe integer. */
export function readField(view: DataView, offset: number, type: FieldType): number {
  switch (type) {
    case 'u16':
      return view.getUint16(offset, true);
    case 'u32':
      return view.getUint32(offset, true);
    case 'u64': {
      const hi = view.getUint32(offset + 4, true);
      return hi > MAX_SAFE_HI ? NaN : hi * TWO_32 + view.getUint32(offset, true);
    }
    case 'i64': {
      const v = view.getInt32(offset + 4, true) * TWO_32 + view.getUint32(offset, true);
      return Number.isSafeInteger(v) ? v : NaN;
    }
  }
}

function outOfRange(op: string, field: string, view: DataView, offset: number, type: FieldType): HypervisorError {
  const hi = view.getUint32(offset + 4, true).toString(16);
  const lo = view.getUint32(offset, true).toString(16).padStart(8, '0');
  const limit = type === 'u64' ? '<= 2^53 - 1' : 'within +-(2^53 - 1)';
  return new HypervisorError('EINVAL', op, `${field}: must be ${limit}, got 0x${hi}${lo} (${type})`);
}

// ---- compiled struct plans -------------------------------------------------------------------
// The same layouts as the functions above, flattened once into typed arrays so that the hot
// paths (decoding a request, encoding a response) walk numbers instead of field objects, and
// read and write bytes directly instead of through a DataView made for each buffer.

/** {@link FieldType} as a small integer, in compiled plans. */
export const W_U16 = 0;
export const W_U32 = 1;
export const W_U64 = 2;
export const W_I64 = 3;

/** {@link FieldRole} as a small integer, in compiled plans. */
export const R_VALUE = 0;
export const R_COUNT = 1;
export const R_ZERO = 2;
export const R_SELECTOR = 3;

export const WIRE_TYPE: { readonly [T in FieldType]: number } = { u16: W_U16, u32: W_U32, u64: W_U64, i64: W_I64 };
const WIRE_ROLE: { readonly [R in FieldRole]: number } = { value: R_VALUE, count: R_COUNT, zero: R_ZERO, selector: R_SELECTOR };

/** A {@link StructLayout} flattened: field i is at `offsets[i]`, of `types[i]` and `roles[i]`. */
export interface StructPlan {
  readonly layout: StructLayout;
  /** Bytes of the fixed part. */
  readonly size: number;
  /** Fields. */
  readonly n: number;
  readonly offsets: Int32Array;
  readonly types: Uint8Array;
  readonly roles: Uint8Array;
  /** The constant of each selector field (0 for the others). */
  readonly selectors: Float64Array;
  /** Of each value field, its place among the struct's values (layout order); -1 for the others. */
  readonly slots: Int32Array;
  /** The property of each value, by slot. */
  readonly props: readonly string[];
  /** Each field's name in range errors (its property, else its wire name) and in reserved-field errors (its wire name). */
  readonly valueNames: readonly string[];
  readonly wireNames: readonly string[];
  /** Index of the count field, or -1. */
  readonly countField: number;
  /** Bytes of one tail element (0 without a tail). */
  readonly tailElementSize: number;
}

/** Flattens `layout` (see {@link StructPlan}). */
export function compileStruct(layout: StructLayout): StructPlan {
  const n = layout.fields.length;
  const offsets = new Int32Array(n);
  const types = new Uint8Array(n);
  const roles = new Uint8Array(n);
  const selectors = new Float64Array(n);
  const slots = new Int32Array(n).fill(-1);
  const props: string[] = [];
  let countField = -1;
  layout.fields.forEach((f, i) => {
    offsets[i] = f.offset;
    types[i] = WIRE_TYPE[f.type];
    roles[i] = WIRE_ROLE[f.role];
    if (f.role === 'selector') selectors[i] = f.value!;
    if (f.role === 'value') {
      slots[i] = props.length;
      props.push(f.prop!);
    }
    if (f.role === 'count') countField = i;
  });
  return {
    layout,
    size: layout.size,
    n,
    offsets,
    types,
    roles,
    selectors,
    slots,
    props,
    valueNames: layout.fields.map((f) => f.prop ?? f.name),
    wireNames: layout.fields.map((f) => f.name),
    countField,
    tailElementSize: layout.tail ? tailElementSize(layout) : 0,
  };
}

/** Little-endian u16 at `at` of `b` (in bounds). */
export function getU16(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}

/** Little-endian u32 at `at` of `b` (in bounds). */
export function getU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** Little-endian u64 at `at` of `b` (in bounds); NaN when above 2^53 - 1. */
export function getU64(b: Uint8Array, at: number): number {
  const hi = getU32(b, at + 4);
  return hi > MAX_SAFE_HI ? NaN : hi * TWO_32 + getU32(b, at);
}

/** The field of wire type `type` at `at` of `b`, as {@link readField} reads it. */
export function getField(b: Uint8Array, at: number, type: number): number {
  if (type === W_U32) return getU32(b, at);
  if (type === W_U64) return getU64(b, at);
  if (type === W_U16) return getU16(b, at);
  const v = (b[at + 4]! | (b[at + 5]! << 8) | (b[at + 6]! << 16) | (b[at + 7]! << 24)) * TWO_32 + getU32(b, at);
  return Number.isSafeInteger(v) ? v : NaN;
}

/** Writes `value` (an integer that fits) as the field of wire type `type` at `at` of `b`. */
export function putField(b: Uint8Array, at: number, type: number, value: number): void {
  if (type === W_U16) {
    b[at] = value;
    b[at + 1] = value >>> 8;
    return;
  }
  let lo = value;
  if (type !== W_U32) {
    // Two 32-bit halves instead of BigInt; floor keeps the low half non-negative for negatives.
    const hi = Math.floor(value / TWO_32);
    lo = value - hi * TWO_32;
    b[at + 4] = hi;
    b[at + 5] = hi >>> 8;
    b[at + 6] = hi >>> 16;
    b[at + 7] = hi >>> 24;
  }
  b[at] = lo;
  b[at + 1] = lo >>> 8;
  b[at + 2] = lo >>> 16;
  b[at + 3] = lo >>> 24;
}

/**
 * {@link readStruct} on a plan, without the tail: checks that exactly `length` bytes at `base`
 * hold the struct and its tail, reads every field (throwing as readStruct does: EFAULT, EINVAL
 * for a reserved field or a 64-bit value out of range, ENOSYS for a selector) and stores the
 * values in `values` from index `slot0`, in the order of `plan.props`. Returns the tail's length.
 */
export function readFields(
  plan: StructPlan,
  bytes: Uint8Array,
  base: number,
  length: number,
  op: string,
  prefix: string,
  values: number[],
  slot0: number,
): number {
  if (length < plan.size) {
    throw new HypervisorError('EFAULT', op, `${prefix}: needs ${plan.size} bytes, got ${length}`);
  }
  const c = plan.countField;
  // Lengths first, so that a short buffer is EFAULT whatever its fields hold.
  const n = c < 0 ? 0 : getField(bytes, base + plan.offsets[c]!, plan.types[c]!);
  if (plan.size + n * plan.tailElementSize !== length) throw lengthMismatch(plan, n, length, op, prefix);
  const offsets = plan.offsets;
  const types = plan.types;
  const roles = plan.roles;
  for (let i = 0; i < plan.n; i++) {
    const at = base + offsets[i]!;
    const v = getField(bytes, at, types[i]!);
    // NaN: a 64-bit value out of range.
    if (v !== v) throw outOfRangeAt(op, `${prefix}.${plan.valueNames[i]!}`, bytes, at, types[i]!);
    const role = roles[i]!;
    if (role === R_VALUE) values[slot0 + plan.slots[i]!] = v;
    else if (role === R_ZERO) {
      if (v !== 0) throw new HypervisorError('EINVAL', op, `${prefix}.${plan.wireNames[i]!}: reserved, must be 0, got ${v}`);
    } else if (role === R_SELECTOR && v !== plan.selectors[i]) {
      // Callers pick the layout by its selector, so a mismatch here is their bug.
      throw new HypervisorError('ENOSYS', op, `${prefix}.${plan.wireNames[i]!}: expected ${plan.selectors[i]!}, got ${v}`);
    }
  }
  return n;
}

function lengthMismatch(plan: StructPlan, n: number, length: number, op: string, prefix: string): HypervisorError {
  const tail = plan.layout.tail;
  const what = tail ? `${plan.size} + ${n} x ${plan.tailElementSize} bytes (${tail.name})` : `${plan.size + n * plan.tailElementSize} bytes`;
  return new HypervisorError('EFAULT', op, `${prefix}: needs ${what}, got ${length} bytes`);
}

function outOfRangeAt(op: string, field: string, bytes: Uint8Array, at: number, type: number): HypervisorError {
  return outOfRange(op, field, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), at, type === W_U64 ? 'u64' : 'i64');
}

/**
 * The tail of `plan` after a {@link readFields} that returned `n`: a view of the bytes for a `u8`
 * tail, a new array for a `u64` one (EINVAL naming the element when one is above 2^53 - 1), and
 * undefined without a tail or for an empty optional one.
 */
export function readTail(plan: StructPlan, bytes: Uint8Array, base: number, n: number, op: string, prefix: string): number[] | Uint8Array | undefined {
  const tail = plan.layout.tail;
  if (tail === undefined || (n === 0 && tail.optional === true)) return undefined;
  const at = base + plan.size;
  if (tail.element === 'u8') return bytes.subarray(at, at + n);
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = getU64(bytes, at + 8 * i);
    if (v !== v) throw outOfRangeAt(op, `${prefix}.${tail.prop}[${i}]`, bytes, at + 8 * i, W_U64);
    values.push(v);
  }
  return values;
}

/** The integers each wire type holds as the codec writes it (64-bit ones: safe integers), by {@link WIRE_TYPE}. */
const WIRE_MIN = [FIELD_RANGE.u16[0], FIELD_RANGE.u32[0], FIELD_RANGE.u64[0], FIELD_RANGE.i64[0]];
const WIRE_MAX = [FIELD_RANGE.u16[1], FIELD_RANGE.u32[1], FIELD_RANGE.u64[1], FIELD_RANGE.i64[1]];

/**
 * Throws HypervisorError EINVAL, naming the field as `prefix.field`, when a value of `obj` is
 * not an integer its field holds (or a tail is not what the layout says): the check an encoder
 * that skips validation still makes, so that no value is written wrapped. What the value may
 * mean (ranges, flags) is the decoder's validation's to say.
 */
export function checkEncodable(plan: StructPlan, obj: Readonly<Record<string, unknown>>, op: string, prefix: string): void {
  for (let i = 0; i < plan.n; i++) {
    if (plan.roles[i] !== R_VALUE) continue;
    const prop = plan.valueNames[i]!;
    const v = obj[prop];
    const t = plan.types[i]!;
    if (typeof v === 'number' && Number.isInteger(v) && v >= WIRE_MIN[t]! && v <= WIRE_MAX[t]!) continue;
    // In the words the schemas use, for the bounds they share.
    const why = typeof v !== 'number' || !Number.isInteger(v) ? 'must be an integer' : v < WIRE_MIN[t]! ? `must be >= ${WIRE_MIN[t]!}` : `must be <= ${WIRE_MAX[t]!}`;
    throw new HypervisorError('EINVAL', op, `${prefix}.${prop}: ${why}, got ${String(v)}`);
  }
  const tail = plan.layout.tail;
  const t = tail === undefined ? undefined : obj[tail.prop];
  if (tail === undefined || t === undefined) return;
  const ok =
    tail.element === 'u8'
      ? t instanceof Uint8Array
      : Array.isArray(t) && t.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= Number.MAX_SAFE_INTEGER);
  if (!ok) throw new HypervisorError('EINVAL', op, `${prefix}.${tail.prop}: must be ${tail.element === 'u8' ? 'a Uint8Array' : 'an array of safe integers >= 0'}`);
}

/**
 * Writes the fields of `plan` at `base` of `bytes` (zeroed): value fields from `obj` (already
 * checked to fit, by validation or {@link checkEncodable}), the count as `n`, selectors as their
 * constant; then the tail `tail` of `n` elements.
 */
export function writeFields(
  plan: StructPlan,
  bytes: Uint8Array,
  base: number,
  obj: Readonly<Record<string, unknown>>,
  n: number,
  tail: ArrayLike<number> | undefined,
): void {
  for (let i = 0; i < plan.n; i++) {
    const role = plan.roles[i]!;
    if (role === R_ZERO) continue;
    const v = role === R_VALUE ? (obj[plan.valueNames[i]!] as number) : role === R_COUNT ? n : plan.selectors[i]!;
    putField(bytes, base + plan.offsets[i]!, plan.types[i]!, v);
  }
  if (tail === undefined || n === 0) return;
  const at = base + plan.size;
  if (tail instanceof Uint8Array) bytes.set(tail, at);
  else for (let i = 0; i < n; i++) putField(bytes, at + 8 * i, W_U64, tail[i]!);
}
