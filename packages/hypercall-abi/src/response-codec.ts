import { HypervisorError, invariant } from '@pagevisor/types';
import { OP_LAYOUTS, RESPONSE_HEADER, type OpLayout, type StructLayout } from './layout.js';
import type { HypercallOp } from './request.js';
import { readStruct, structSize, tailLength, writeStruct } from './struct-codec.js';

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
  invariant(Number.isSafeInteger(res.rc), `${op}: response rc ${res.rc} is not a safe integer`);
  const layout = OP_LAYOUTS[op] as OpLayout;
  const body = res.rc >= 0 ? layout.response : NO_BODY;
  const fields = res as unknown as Readonly<Record<string, unknown>>;
  checkBody(op, res, body, fields);
  const message = res.message ? utf8Encoder.encode(res.message) : new Uint8Array(0);
  const bodyLength = structSize(body, tailLength(body, fields));
  const buf = new Uint8Array(RESPONSE_HEADER.size + bodyLength + message.length);
  const view = new DataView(buf.buffer);
  writeStruct(view, buf, 0, RESPONSE_HEADER, { rc: res.rc, messageLength: message.length });
  writeStruct(view, buf, RESPONSE_HEADER.size, body, fields);
  buf.set(message, RESPONSE_HEADER.size + bodyLength);
  return buf;
}

function checkBody(
  op: HypercallOp,
  res: HypercallResponse,
  body: StructLayout,
  fields: Readonly<Record<string, unknown>>,
): void {
  for (const f of body.fields) {
    if (f.role !== 'value') continue;
    const v = fields[f.prop!];
    invariant(isU64(v), `${op}: response ${f.prop} ${String(v)} is not a non-negative safe integer`);
  }
  const tail = body.tail;
  if (!tail) return;
  const v = fields[tail.prop];
  if (tail.optional && v === undefined) return;
  if (tail.element === 'u8') {
    invariant(v instanceof Uint8Array, `${op}: response ${tail.prop} is not a Uint8Array`);
    return;
  }
  invariant(Array.isArray(v) && v.every(isU64), `${op}: response ${tail.prop} is not an array of gfns`);
  // Xen's rc for a reservation op is the number of extents done, one gfn each.
  invariant(v.length === res.rc, `${op}: response has ${v.length} ${tail.prop} but rc ${res.rc}`);
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
  const hsize = RESPONSE_HEADER.size;
  if (buf.length < hsize) {
    throw new HypervisorError('EFAULT', op, `response is ${buf.length} bytes, shorter than the ${hsize}-byte header`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const header: Record<string, unknown> = {};
  readStruct(view, buf, 0, hsize, RESPONSE_HEADER, op, 'response', header);
  const rc = header['rc'] as number;
  const messageLength = header['messageLength'] as number;
  const bodyLength = buf.length - hsize - messageLength;
  if (bodyLength < 0) {
    throw new HypervisorError(
      'EFAULT',
      op,
      `response.message_length is ${messageLength} but only ${buf.length - hsize} bytes follow the header`,
    );
  }
  const layout = OP_LAYOUTS[op] as OpLayout;
  const body = rc >= 0 ? layout.response : NO_BODY;
  const out: Record<string, unknown> = { rc };
  const n = readStruct(view, buf, hsize, bodyLength, body, op, 'response', out);
  if (body.tail?.element === 'u64' && n !== rc) {
    throw new HypervisorError('EFAULT', op, `response has ${n} ${body.tail.prop} but rc ${rc}`);
  }
  if (messageLength > 0) out['message'] = utf8Decoder.decode(buf.subarray(hsize + bodyLength));
  return out as unknown as HypercallResponse;
}
