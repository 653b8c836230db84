import { DOMID_SELF, HypervisorError, MAX_ORDER, PAGE_SIZE } from '@pagevisor/types';
import { z } from 'zod';
import { MAX_EXTENTS, MEM_FLAGS_KNOWN } from './op-numbers.js';
import { HYPERCALL_OPS, type HypercallOp, type HypercallRequest } from './request.js';

const domid = z.int().min(0).max(DOMID_SELF);
// z.int() accepts safe integers only, which is exactly what a u64 read without BigInt can carry.
const gfn = z.int().min(0);
const handle = z.int().min(0);
const extentOrder = z.int().min(0).max(MAX_ORDER);
const memFlags = z
  .int()
  .min(0)
  .max(0xffff_ffff)
  .check((ctx) => {
    const unknown = (ctx.value & ~MEM_FLAGS_KNOWN) >>> 0;
    if (unknown !== 0) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        message: `has unknown bits 0x${unknown.toString(16)} (known: 0x${MEM_FLAGS_KNOWN.toString(16)})`,
      });
    }
  });
const gfns = z.array(gfn).max(MAX_EXTENTS);
const pageOffset = z.int().min(0).max(PAGE_SIZE);

const increaseReservation = z.object({
  op: z.literal('increase_reservation'),
  domid,
  nrExtents: z.int().min(0).max(MAX_EXTENTS),
  extentOrder,
  memFlags,
});

const decreaseReservation = z.object({
  op: z.literal('decrease_reservation'),
  domid,
  extentOrder,
  gfns,
});

const populatePhysmap = z.object({
  op: z.literal('populate_physmap'),
  domid,
  extentOrder,
  memFlags,
  gfns,
});

const currentReservation = z.object({ op: z.literal('current_reservation'), domid });
const maximumReservation = z.object({ op: z.literal('maximum_reservation'), domid });

function inPage(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= PAGE_SIZE;
}

const readPage = z
  .object({
    op: z.literal('read_page'),
    domid,
    gfn,
    offset: pageOffset,
    length: z.int().min(0).max(PAGE_SIZE),
  })
  .check((ctx) => {
    const { offset, length } = ctx.value;
    // zod runs this even when a field failed; report the sum only when both fields are sound.
    if (inPage(offset) && inPage(length) && offset + length > PAGE_SIZE) {
      ctx.issues.push({
        code: 'custom',
        path: ['length'],
        input: length,
        message: `offset + length must be <= ${PAGE_SIZE}, got ${offset} + ${length}`,
      });
    }
  });

const writePage = z
  .object({
    op: z.literal('write_page'),
    domid,
    gfn,
    offset: pageOffset,
    data: z.custom<Uint8Array>((v) => v instanceof Uint8Array, { error: 'must be a Uint8Array' }),
  })
  .check((ctx) => {
    const { offset, data } = ctx.value;
    if (inPage(offset) && data instanceof Uint8Array && offset + data.length > PAGE_SIZE) {
      ctx.issues.push({
        code: 'custom',
        path: ['data'],
        input: data,
        message: `offset + data.length must be <= ${PAGE_SIZE}, got ${offset} + ${data.length}`,
      });
    }
  });

const sharingNominateGfn = z.object({ op: z.literal('sharing_nominate_gfn'), domid, gfn });

const sharingShare = z.object({
  op: z.literal('sharing_share'),
  sourceDomid: domid,
  sourceGfn: gfn,
  sourceHandle: handle,
  clientDomid: domid,
  clientGfn: gfn,
  clientHandle: handle,
});

const pagingNominate = z.object({ op: z.literal('paging_nominate'), domid, gfn });
const pagingEvict = z.object({ op: z.literal('paging_evict'), domid, gfn });
const pagingPrep = z.object({
  op: z.literal('paging_prep'),
  domid,
  gfn,
  // A page is loaded whole or not at all: Xen's prep buffer is always one full page.
  data: z
    .custom<Uint8Array>((v) => v instanceof Uint8Array, { error: 'must be a Uint8Array' })
    .check((ctx) => {
      if (ctx.value.length !== PAGE_SIZE) {
        ctx.issues.push({
          code: 'custom',
          input: ctx.value,
          message: `must be ${PAGE_SIZE} bytes when present, got ${ctx.value.length}`,
        });
      }
    })
    .optional(),
});

/**
 * The zod schema of each operation's request: argument types and ranges (domid 0..DOMID_SELF,
 * extentOrder 0..MAX_ORDER, gfns and handles non-negative safe integers, at most MAX_EXTENTS
 * extents, page accesses within one page, memFlags limited to MEM_FLAGS_KNOWN, a paging_prep
 * `data` of exactly PAGE_SIZE bytes when present).
 */
export const REQUEST_SCHEMAS = {
  increase_reservation: increaseReservation,
  decrease_reservation: decreaseReservation,
  populate_physmap: populatePhysmap,
  current_reservation: currentReservation,
  maximum_reservation: maximumReservation,
  read_page: readPage,
  write_page: writePage,
  sharing_nominate_gfn: sharingNominateGfn,
  sharing_share: sharingShare,
  paging_nominate: pagingNominate,
  paging_evict: pagingEvict,
  paging_prep: pagingPrep,
} as const;

/** One schema for any request, discriminated by `op`. */
export const hypercallRequestSchema = z.discriminatedUnion('op', [
  increaseReservation,
  decreaseReservation,
  populatePhysmap,
  currentReservation,
  maximumReservation,
  readPage,
  writePage,
  sharingNominateGfn,
  sharingShare,
  pagingNominate,
  pagingEvict,
  pagingPrep,
]);

// Compile-time proof that the schemas produce exactly the hand-written request types.
type SchemaOutput = z.infer<typeof hypercallRequestSchema>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemasMatchTypes: Same<SchemaOutput, HypercallRequest> = true;
void schemasMatchTypes;

const MAX_ISSUES_REPORTED = 3;

/**
 * Validates `value` as a request and returns the request (a copy: unknown keys dropped).
 * Throws HypervisorError(EINVAL) whose detail names each bad field as `op.field`, e.g.
 * `populate_physmap.extentOrder: must be <= 18, got 40`.
 */
export function validateRequest(value: unknown): HypercallRequest {
  const op = opOf(value);
  if (op === undefined) {
    const got = isRecord(value) ? describe(value['op']) : describe(value);
    throw new HypervisorError('EINVAL', 'hypercall', `op: must be one of ${HYPERCALL_OPS.join(', ')}, got ${got}`);
  }
  const result = REQUEST_SCHEMAS[op].safeParse(value, { reportInput: true });
  if (!result.success) {
    throw new HypervisorError('EINVAL', op, formatIssues(op, result.error.issues));
  }
  return result.data;
}

function opOf(value: unknown): HypercallOp | undefined {
  if (!isRecord(value)) return undefined;
  const op = value['op'];
  return (HYPERCALL_OPS as readonly unknown[]).includes(op) ? (op as HypercallOp) : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function formatIssues(op: string, issues: readonly z.core.$ZodIssue[]): string {
  const parts = issues.slice(0, MAX_ISSUES_REPORTED).map((issue) => formatIssue(op, issue));
  if (issues.length > MAX_ISSUES_REPORTED) parts.push(`and ${issues.length - MAX_ISSUES_REPORTED} more`);
  return parts.join('; ');
}

function formatIssue(op: string, issue: z.core.$ZodIssue): string {
  return `${op}${formatPath(issue.path)}: ${issueText(issue)}`;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `.${String(key)}`;
  return out;
}

function issueText(issue: z.core.$ZodIssue): string {
  const got = describe(issue.input);
  switch (issue.code) {
    case 'too_big':
      return issue.origin === 'array'
        ? `must have <= ${issue.maximum} items, got ${got}`
        : `must be <= ${issue.maximum}, got ${got}`;
    case 'too_small':
      return issue.origin === 'array'
        ? `must have >= ${issue.minimum} items, got ${got}`
        : `must be >= ${issue.minimum}, got ${got}`;
    case 'invalid_type':
      return `must be ${issue.expected === 'int' ? 'a safe integer' : issue.expected}, got ${got}`;
    case 'invalid_value':
      return `must be ${issue.values.map((v) => describe(v)).join(' or ')}, got ${got}`;
    default:
      return issue.message;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (Array.isArray(value)) return `${value.length} items`;
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (value === null) return 'null';
  return typeof value;
}
