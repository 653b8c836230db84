import { HypervisorError, invariant, InvariantError } from '@pagevisor/types';
import { FIELD_SIZE, OP_LAYOUTS, REQUEST_HEADER, type OpLayout } from './layout.js';
import { Hypercall, XenMem } from './op-numbers.js';
import type { HypercallRequest } from './request.js';
import { validateRequest } from './schema.js';
import { checkEncodable, readField, readStruct, structSize, tailLength, writeStruct } from './struct-codec.js';

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
  const layout = typeof req === 'object' && req !== null ? (OP_LAYOUTS[req.op] as OpLayout | undefined) : undefined;
  let valid: Readonly<Record<string, unknown>>;
  if (opts.validate === false && layout !== undefined) {
    valid = req as unknown as Readonly<Record<string, unknown>>;
    checkEncodable(layout.request, valid, req.op, req.op);
    const domid = valid[layout.domidProp];
    if (typeof domid !== 'number' || !Number.isInteger(domid) || domid < 0 || domid > 0xffff) {
      throw new HypervisorError('EINVAL', req.op, `${req.op}.${layout.domidProp}: must be a domain id (0 to 65535), got ${String(domid)}`);
    }
  } else {
    valid = validateRequest(req) as unknown as Readonly<Record<string, unknown>>;
  }
  if (layout === undefined) throw new InvariantError(`encodeRequest: no layout for op ${req.op}`);
  const payloadLength = structSize(layout.request, tailLength(layout.request, valid));
  const buf = new Uint8Array(REQUEST_HEADER.size + payloadLength);
  const view = new DataView(buf.buffer);
  writeStruct(view, buf, 0, REQUEST_HEADER, {
    hypercall: layout.hypercall,
    subop: layout.subop,
    domid: valid[layout.domidProp],
    payloadLength,
  });
  writeStruct(view, buf, REQUEST_HEADER.size, layout.request, valid);
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
 * A `write_page` or `paging_prep` request's `data` is a view of `buf`, not a copy.
 */
export function decodeRequest(buf: Uint8Array): HypercallRequest {
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
