import { HypervisorError, invariant, InvariantError } from '@pagevisor/types';
import { OP_LAYOUTS, RESPONSE_HEADER, type FieldSpec, type OpLayout, type StructLayout } from './layout.js';
import type { HypercallOp } from './request.js';
import { compileStruct, putField, readFields, readTail, WIRE_TYPE, writeFields, type StructPlan } from './struct-codec.js';

/**
 * The result of a hypercall. `rc >= 0` is the result (Xen's convention: extents done for the
 * reservation ops, pages for current/maximum_reservation, 0 for the others) and the op's outputs
 * are set: `gfns` (increase_reservation), `data` (read_page; tmem_get_page when rc = 1), `handle`
 * (sharing_nominate_gfn).
 * `rc < 0` is -errno and only `message` may be set. `message` is a pagevisor addition: Xen returns
 * the errno alone.
 */
export interface HypercallResponse {
  rc: number;
  gfns?: number[];
  handle?: number;
  data?: Uint8Array;
  message?: string;
}

const NO_BODY: StructLayout = { size: 0, fields: [] };
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

/**
 * Encodes `res`, the response to an `op` request: the 16-byte header, the op's body when
 * rc >= 0 (see OP_LAYOUTS), then the UTF-8 message. A response that does not fit `op` (rc not
 * a safe integer, an output missing or out of range) is a bug of its maker: InvariantError.
 */
export function encodeResponse(op: HypercallOp, res: HypercallResponse): Uint8Array {
  return encodeResponseInto(op, res, newBuffer);
}

function newBuffer(length: number): Uint8Array {
  return new Uint8Array(length);
}

/**
 * {@link encodeResponse} into the buffer `alloc` gives for the response's length, which must
 * be zeroed (reserved fields are left as they are) and of exactly that length.
 */
export function encodeResponseInto(op: HypercallOp, res: HypercallResponse, alloc: (length: number) => Uint8Array): Uint8Array {
  const rc = res.rc;
  if (!Number.isSafeInteger(rc)) throw new InvariantError(`${op}: response rc ${rc} is not a safe integer`);
  const enc = ENCODERS.get(op);
  if (enc === undefined) throw new InvariantError(`encodeResponse: no layout for op ${String(op)}`);
  const body = rc >= 0 ? enc.body : NO_BODY_PLAN;
  const fields = res as unknown as Readonly<Record<string, unknown>>;
  checkValues(op, body, fields);
  const tail = body.layout.tail === undefined ? undefined : checkTail(op, res, body);
  const message = res.message ? utf8Encoder.encode(res.message) : undefined;
  const messageLength = message === undefined ? 0 : message.length;
  const tailLength = tail === undefined ? 0 : tail.length;
  const bodyLength = body.size + tailLength * body.tailElementSize;
  const hsize = HEADER_PLAN.size;
  const buf = alloc(hsize + bodyLength + messageLength);
  // Reserved fields stay 0, as the new buffer holds them.
  putField(buf, H_RC_AT, H_RC_TYPE, rc);
  if (messageLength !== 0) putField(buf, H_MESSAGE_LENGTH_AT, H_MESSAGE_LENGTH_TYPE, messageLength);
  writeFields(body, buf, hsize, fields, tailLength, tail);
  if (message !== undefined) buf.set(message, hsize + bodyLength);
  return buf;
}

/** Each op's response body, flattened once. */
const ENCODERS = new Map<string, { readonly body: StructPlan }>(
  (Object.values(OP_LAYOUTS) as OpLayout[]).map((l) => [l.op, { body: compileStruct(l.response) }]),
);
const NO_BODY_PLAN = compileStruct(NO_BODY);
const HEADER_PLAN = compileStruct(RESPONSE_HEADER);
const headerField = (prop: string): FieldSpec => {
  const f = RESPONSE_HEADER.fields.find((x) => x.prop === prop);
  invariant(f, `RESPONSE_HEADER has no ${prop}`);
  return f;
};
const H_RC_AT = headerField('rc').offset;
const H_RC_TYPE = WIRE_TYPE[headerField('rc').type];
const H_MESSAGE_LENGTH_AT = headerField('messageLength').offset;
const H_MESSAGE_LENGTH_TYPE = WIRE_TYPE[headerField('messageLength').type];

/** InvariantError unless every value field of `body` is a non-negative safe integer in `fields`. */
function checkValues(op: HypercallOp, body: StructPlan, fields: Readonly<Record<string, unknown>>): void {
  for (let s = 0; s < body.props.length; s++) {
    const v = fields[body.props[s]!];
    if (!isU64(v)) throw new InvariantError(`${op}: response ${body.props[s]!} ${String(v)} is not a non-negative safe integer`);
  }
}

/** The tail `res` carries for `body` (InvariantError when it is not what the layout says), or undefined for an absent optional one. */
function checkTail(op: HypercallOp, res: HypercallResponse, body: StructPlan): Uint8Array | readonly number[] | undefined {
  const tail = body.layout.tail!;
  const v = (res as unknown as Readonly<Record<string, unknown>>)[tail.prop];
  if (tail.optional && v === undefined) return undefined;
  if (tail.element === 'u8') {
    if (!(v instanceof Uint8Array)) throw new InvariantError(`${op}: response ${tail.prop} is not a Uint8Array`);
    return v;
  }
  if (!(Array.isArray(v) && v.every(isU64))) throw new InvariantError(`${op}: response ${tail.prop} is not an array of gfns`);
  // Xen's rc for a reservation op is the number of extents done, one gfn each.
  if (v.length !== res.rc) throw new InvariantError(`${op}: response has ${v.length} ${tail.prop} but rc ${res.rc}`);
  return v as readonly number[];
}

function isU64(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/**
 * Decodes a response to an `op` request. Throws HypervisorError (with `op`) when the bytes do not
 * hold one: EFAULT when the buffer is too short or its lengths disagree, EINVAL when rc or a
 * 64-bit output is not a safe integer or a reserved field is not 0. A `data` output is a view of
 * `buf`, not a copy.
 */
export function decodeResponse(op: HypercallOp, buf: Uint8Array): HypercallResponse {
  const hsize = HEADER_PLAN.size;
  if (buf.length < hsize) {
    throw new HypervisorError('EFAULT', op, `response is ${buf.length} bytes, shorter than the ${hsize}-byte header`);
  }
  const h = HEADER_VALUES;
  readFields(HEADER_PLAN, buf, 0, hsize, op, 'response', h, 0);
  const rc = h[H_RC]!;
  const messageLength = h[H_MESSAGE_LENGTH]!;
  const bodyLength = buf.length - hsize - messageLength;
  if (bodyLength < 0) {
    throw new HypervisorError(
      'EFAULT',
      op,
      `response.message_length is ${messageLength} but only ${buf.length - hsize} bytes follow the header`,
    );
  }
  const enc = ENCODERS.get(op);
  if (enc === undefined) throw new InvariantError(`decodeResponse: no layout for op ${String(op)}`);
  const body = rc >= 0 ? enc.body : NO_BODY_PLAN;
  const v = BODY_VALUES;
  const n = readFields(body, buf, hsize, bodyLength, op, 'response', v, 0);
  const out: Record<string, unknown> = { rc };
  for (let i = 0; i < body.props.length; i++) out[body.props[i]!] = v[i];
  const tail = readTail(body, buf, hsize, n, op, 'response');
  const tailSpec = body.layout.tail;
  if (tail !== undefined) out[tailSpec!.prop] = tail;
  if (tailSpec?.element === 'u64' && n !== rc) {
    throw new HypervisorError('EFAULT', op, `response has ${n} ${tailSpec.prop} but rc ${rc}`);
  }
  if (messageLength > 0) out['message'] = utf8Decoder.decode(buf.subarray(hsize + bodyLength));
  return out as unknown as HypercallResponse;
}

/** Values read by the decoder, for every call (nothing else runs between reading and using them). */
const HEADER_VALUES: number[] = new Array<number>(HEADER_PLAN.props.length).fill(0);
const BODY_VALUES: number[] = new Array<number>(Math.max(...[...ENCODERS.values()].map((e) => e.body.props.length), 1)).fill(0);
const H_RC = HEADER_PLAN.props.indexOf('rc');
const H_MESSAGE_LENGTH = HEADER_PLAN.props.indexOf('messageLength');
