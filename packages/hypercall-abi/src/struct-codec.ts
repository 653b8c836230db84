import { HypervisorError } from '@pagevisor/types';
import type { FieldType, StructLayout } from './layout.js';

const TWO_32 = 0x1_0000_0000;
/** High 32-bit half of Number.MAX_SAFE_INTEGER (2^53 - 1). */
const MAX_SAFE_HI = 0x1f_ffff;

/** Bytes of a struct whose tail has `tailLength` elements. */
export function structSize(layout: StructLayout, tailLength: number): number {
  return layout.size + (layout.tail ? tailLength * tailElementSize(layout) : 0);
}

/** Elements in `obj`'s tail property for `layout` (0 without a tail). */
export function tailLength(layout: StructLayout, obj: Readonly<Record<string, unknown>>): number {
  if (!layout.tail) return 0;
  // Only an optional tail may be absent; validation has already refused a missing required one.
  return (obj[layout.tail.prop] as ArrayLike<unknown> | undefined)?.length ?? 0;
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
 * Throws HypervisorError EINVAL, naming the field as `prefix.field`, when a value of `obj` is
 * not an integer its field holds (or a tail is not what the layout says): the check an encoder
 * that skips validation still makes, so that no value is written wrapped. What the value may
 * mean (ranges, flags) is the decoder's validation's to say.
 */
export function checkEncodable(layout: StructLayout, obj: Readonly<Record<string, unknown>>, op: string, prefix: string): void {
  for (const f of layout.fields) {
    if (f.role !== 'value') continue;
    const v = obj[f.prop!];
    const [min, max] = FIELD_RANGE[f.type];
    // In the words the schemas use, for the bounds they share.
    const why = typeof v !== 'number' || !Number.isInteger(v) ? 'must be an integer' : v < min ? `must be >= ${min}` : v > max ? `must be <= ${max}` : undefined;
    if (why !== undefined) throw new HypervisorError('EINVAL', op, `${prefix}.${f.prop!}: ${why}, got ${String(v)}`);
  }
  const tail = layout.tail;
  const t = tail === undefined ? undefined : obj[tail.prop];
  if (tail === undefined || t === undefined) return;
  const ok =
    tail.element === 'u8'
      ? t instanceof Uint8Array
      : Array.isArray(t) && t.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= Number.MAX_SAFE_INTEGER);
  if (!ok) throw new HypervisorError('EINVAL', op, `${prefix}.${tail.prop}: must be ${tail.element === 'u8' ? 'a Uint8Array' : 'an array of safe integers >= 0'}`);
}

/**
 * Writes `obj` as `layout` at `base`. Values must already be validated, or at least checked by
 * {@link checkEncodable}: integers that fit their field (safe non-negative integers for u64).
 */
export function writeStruct(
  view: DataView,
  bytes: Uint8Array,
  base: number,
  layout: StructLayout,
  obj: Readonly<Record<string, unknown>>,
): void {
  const n = tailLength(layout, obj);
  for (const f of layout.fields) {
    let v = 0;
    if (f.role === 'value') v = obj[f.prop!] as number;
    else if (f.role === 'count') v = n;
    else if (f.role === 'selector') v = f.value!;
    writeField(view, base + f.offset, f.type, v);
  }
  const tail = layout.tail;
  if (!tail) return;
  const at = base + layout.size;
  if (n === 0) return;
  if (tail.element === 'u8') {
    bytes.set(obj[tail.prop] as Uint8Array, at);
  } else {
    const values = obj[tail.prop] as readonly number[];
    for (let i = 0; i < n; i++) writeField(view, at + 8 * i, 'u64', values[i]!);
  }
}

/**
 * Reads `layout` from exactly `length` bytes at `base` into `out`; returns the tail length.
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

/** Writes `value` (an integer that fits `type`) little-endian at `offset`. */
export function writeField(view: DataView, offset: number, type: FieldType, value: number): void {
  switch (type) {
    case 'u16':
      view.setUint16(offset, value, true);
      return;
    case 'u32':
      view.setUint32(offset, value, true);
      return;
    case 'u64':
    case 'i64': {
      // Two 32-bit halves instead of BigInt; floor keeps the low half non-negative for negatives.
      const hi = Math.floor(value / TWO_32);
      view.setUint32(offset, value - hi * TWO_32, true);
      view.setInt32(offset + 4, hi, true);
      return;
    }
  }
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
