import { DOMID_SELF, HypervisorError, MAX_ORDER, PAGE_SIZE } from '@pagevisor/types';
import { z } from 'zod';
import { Madvise, MAX_EXTENTS, MEM_FLAGS_KNOWN, TMEM_POOL_PERSIST } from './op-numbers.js';
import { HYPERCALL_OPS, type HypercallOp, type HypercallRequest } from './request.js';
import { crossFieldCheck, customType, valueCheck } from './schema-rules.js';

const domid = z.int().min(0).max(DOMID_SELF);
// z.int() accepts safe integers only, which is exactly what a u64 read without BigInt can carry.
const gfn = z.int().min(0);
const handle = z.int().min(0);
const extentOrder = z.int().min(0).max(MAX_ORDER);
const memFlags = z
  .int()
  .min(0)
  .max(0xffff_ffff)
  .check(
    valueCheck((v: number) => {
      const unknown = (v & ~MEM_FLAGS_KNOWN) >>> 0;
      return unknown === 0 ? undefined : `has unknown bits 0x${unknown.toString(16)} (known: 0x${MEM_FLAGS_KNOWN.toString(16)})`;
    }),
  );
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
const maximumGpfn = z.object({ op: z.literal('maximum_gpfn'), domid });
const u32 = z.int().min(0).max(0xffff_ffff);
const u16 = z.int().min(0).max(0xffff);
const claimPages = z.object({ op: z.literal('claim_pages'), domid, nrPages: u32 });
/** A number that must be exactly `n`, typed as a plain number like the header field it checks. */
function exactly(n: number, why: string) {
  return z.int().check(valueCheck((v: number) => (v === n ? undefined : `must be ${n} (${why}), got ${v}`)));
}
/** A number that must be one of `values` (named in the message), typed as a plain number. */
function oneOf(values: readonly number[], names: string) {
  return z.int().check(valueCheck((v: number) => (values.includes(v) ? undefined : `must be ${names}, got ${v}`)));
}
// Host-wide figures name no domain: the header's domid must say "the caller".
const hostWide = exactly(DOMID_SELF, 'DOMID_SELF: the op is host-wide');
const getSharingFreedPages = z.object({ op: z.literal('get_sharing_freed_pages'), domid: hostWide });
const getSharingSharedPages = z.object({ op: z.literal('get_sharing_shared_pages'), domid: hostWide });

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
  .check(
    crossFieldCheck(({ offset, length }: { offset: number; length: number }) =>
      // zod runs this even when a field failed a range; report the sum only when both fields are sound.
      inPage(offset) && inPage(length) && offset + length > PAGE_SIZE
        ? { path: 'length', input: length, message: `offset + length must be <= ${PAGE_SIZE}, got ${offset} + ${length}` }
        : undefined,
    ),
  );

const writePage = z
  .object({
    op: z.literal('write_page'),
    domid,
    gfn,
    offset: pageOffset,
    data: bytes(),
  })
  .check(
    crossFieldCheck(({ offset, data }: { offset: number; data: Uint8Array }) =>
      inPage(offset) && data instanceof Uint8Array && offset + data.length > PAGE_SIZE
        ? { path: 'data', input: data, message: `offset + data.length must be <= ${PAGE_SIZE}, got ${offset} + ${data.length}` }
        : undefined,
    ),
  );

const madvise = z.object({
  op: z.literal('madvise'),
  domid,
  gfn,
  count: z.int().min(0),
  advice: oneOf([Madvise.dontneed, Madvise.mergeable, Madvise.unmergeable], 'MADV_DONTNEED (4), MADV_MERGEABLE (12) or MADV_UNMERGEABLE (13)'),
});

const sharingNominateGfn = z.object({ op: z.literal('sharing_nominate_gfn'), domid, gfn });
const sharingDebugGfn = z.object({ op: z.literal('sharing_debug_gfn'), domid, gfn });
const sharingAddPhysmap = z.object({
  op: z.literal('sharing_add_physmap'),
  sourceDomid: domid,
  sourceGfn: gfn,
  sourceHandle: handle,
  clientDomid: domid,
  clientGfn: gfn,
});
const sharingAudit = z.object({ op: z.literal('sharing_audit'), domid: hostWide });
const sharingRangeShare = z
  .object({ op: z.literal('sharing_range_share'), sourceDomid: domid, clientDomid: domid, firstGfn: gfn, lastGfn: gfn })
  .check(
    crossFieldCheck(({ firstGfn, lastGfn }: { firstGfn: number; lastGfn: number }) =>
      Number.isSafeInteger(firstGfn) && Number.isSafeInteger(lastGfn) && lastGfn < firstGfn
        ? { path: 'lastGfn', input: lastGfn, message: `must be >= firstGfn ${firstGfn}, got ${lastGfn}` }
        : undefined,
    ),
  );
const sharingFork = z.object({ op: z.literal('sharing_fork'), domid, parentDomid: domid });
const sharingForkReset = z.object({ op: z.literal('sharing_fork_reset'), domid });

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
  data: fullPage(' when present').optional(),
});

/** A Uint8Array. */
function bytes() {
  return customType((v): v is Uint8Array => v instanceof Uint8Array, 'must be a Uint8Array');
}

/** A Uint8Array of exactly PAGE_SIZE bytes. */
function fullPage(when = '') {
  return bytes().check(valueCheck((v: Uint8Array) => (v.length === PAGE_SIZE ? undefined : `must be ${PAGE_SIZE} bytes${when}, got ${v.length}`)));
}

const poolId = u32;
const oidWord = z.int().min(0);
const tmemKey = { domid, poolId, oid0: oidWord, oid1: oidWord, oid2: oidWord };
const tmemNewPool = z.object({
  op: z.literal('tmem_new_pool'),
  domid,
  // Only TMEM_POOL_PERSIST: shared pools would cross domains; page size and version bits must be 0.
  flags: oneOf([0, TMEM_POOL_PERSIST], '0 (ephemeral) or TMEM_POOL_PERSIST (1)'),
});
const tmemDestroyPool = z.object({ op: z.literal('tmem_destroy_pool'), domid, poolId });
const tmemPutPage = z.object({ op: z.literal('tmem_put_page'), ...tmemKey, index: u32, data: fullPage() });
const tmemGetPage = z.object({ op: z.literal('tmem_get_page'), ...tmemKey, index: u32 });
const tmemFlushPage = z.object({ op: z.literal('tmem_flush_page'), ...tmemKey, index: u32 });
const tmemFlushObject = z.object({ op: z.literal('tmem_flush_object'), ...tmemKey });

const domctlCreatedomain = z.object({
  op: z.literal('domctl_createdomain'),
  // The hypervisor picks the id; Xen's "0: any free id" is the only request accepted.
  domid: exactly(0, 'the hypervisor picks the new id'),
  maxPages: z.int().min(0),
  gfnCount: z.int().min(0),
  trustGroup: u16,
});
const domctlDestroydomain = z.object({ op: z.literal('domctl_destroydomain'), domid });
const domctlPausedomain = z.object({ op: z.literal('domctl_pausedomain'), domid });
const domctlUnpausedomain = z.object({ op: z.literal('domctl_unpausedomain'), domid });
const domctlMaxMem = z
  .object({ op: z.literal('domctl_max_mem'), domid, maxMemKb: z.int().min(0) })
  .check(
    crossFieldCheck(({ maxMemKb: kb }: { maxMemKb: number }) =>
      Number.isSafeInteger(kb) && kb % (PAGE_SIZE / 1024) !== 0
        ? { path: 'maxMemKb', input: kb, message: `must be a multiple of ${PAGE_SIZE / 1024} KiB, got ${kb}` }
        : undefined,
    ),
  );
const domctlSharingControl = z.object({
  op: z.literal('domctl_sharing_control'),
  domid,
  enable: oneOf([0, 1], '0 or 1'),
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
  maximum_gpfn: maximumGpfn,
  claim_pages: claimPages,
  get_sharing_freed_pages: getSharingFreedPages,
  get_sharing_shared_pages: getSharingSharedPages,
  read_page: readPage,
  write_page: writePage,
  madvise,
  sharing_nominate_gfn: sharingNominateGfn,
  sharing_share: sharingShare,
  sharing_debug_gfn: sharingDebugGfn,
  sharing_add_physmap: sharingAddPhysmap,
  sharing_audit: sharingAudit,
  sharing_range_share: sharingRangeShare,
  sharing_fork: sharingFork,
  sharing_fork_reset: sharingForkReset,
  paging_nominate: pagingNominate,
  paging_evict: pagingEvict,
  paging_prep: pagingPrep,
  tmem_new_pool: tmemNewPool,
  tmem_destroy_pool: tmemDestroyPool,
  tmem_put_page: tmemPutPage,
  tmem_get_page: tmemGetPage,
  tmem_flush_page: tmemFlushPage,
  tmem_flush_object: tmemFlushObject,
  domctl_createdomain: domctlCreatedomain,
  domctl_destroydomain: domctlDestroydomain,
  domctl_pausedomain: domctlPausedomain,
  domctl_unpausedomain: domctlUnpausedomain,
  domctl_max_mem: domctlMaxMem,
  domctl_sharing_control: domctlSharingControl,
} as const;

/** One schema for any request, discriminated by `op`. */
export const hypercallRequestSchema = z.discriminatedUnion('op', Object.values(REQUEST_SCHEMAS) as unknown as AllSchemas);

type AllSchemas = [(typeof REQUEST_SCHEMAS)[HypercallOp], ...(typeof REQUEST_SCHEMAS)[HypercallOp][]];

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

/**
 * The detail of the EINVAL refusing `issues` of an `op` request: the first few issues as
 * `op.field: what`, then how many more. The compiled validators word their issues through this too.
 */
export function formatIssues(op: string, issues: readonly z.core.$ZodIssue[]): string {
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
