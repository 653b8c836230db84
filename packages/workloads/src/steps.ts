import { z } from 'zod';
import { Errno, PAGE_SIZE } from '@pagevisor/types';
import { bool, intIn, must, name, nonNegativeInt, object, positive, positiveInt, whenValid } from './schema-helpers.js';

/** The `op` of every kind of step, in the order the README lists them. */
export const STEP_OPS = [
  'fill',
  'write',
  'madvise',
  'set_memory_merge',
  'discard',
  'populate',
  'fork',
  'set',
  'wait',
  'wait_full_scans',
  'checkpoint',
] as const;

/**
 * Default of `wait_full_scans.timeoutS`: simulated seconds before a wait that sees no progress
 * fails (120, the limit of KSM's own selftests, ksm_tests.c).
 */
export const DEFAULT_WAIT_TIMEOUT_S = 120;

/** What a step may say it expects: `"ok"` or the errno name of a refusal, e.g. `"EBUSY"`. */
export const STEP_EXPECTATIONS = ['ok', ...(Object.keys(Errno) as (keyof typeof Errno)[])] as const;

/**
 * Fields every step may carry. `expect` (default: none) turns the step into an assertion: when
 * its outcome differs (it succeeded where `"EBUSY"` was expected, or was refused where `"ok"`
 * was), the step fails, no further step runs, and the run exits 2. Without `expect`, a refused
 * step is recorded in the report and the next step runs.
 */
const common = {
  expect: z.enum(STEP_EXPECTATIONS, must(`"ok" or an errno name (${STEP_EXPECTATIONS.slice(1).join(', ')})`)).optional(),
};

/** A page range of one guest: `count` pages from `gfn`. Checked against the guest's size by the scenario. */
const range = {
  /** Domain name of the guest, e.g. `"vm-0"` (a spec with count 1 names its guest `name`). */
  guest: name(),
  /** First guest frame. */
  gfn: nonNegativeInt(),
  /** Pages, at least 1. */
  count: positiveInt(),
};

const byte = () => intIn(0, 255, 'an integer from 0 to 255');

/**
 * Whole-page writes of every page of the range: every byte `pattern` (like `memset`), or seeded
 * content: with `seed` alone every page of the range is the same page, with `distinct: true` page
 * `i` of the range (counting from 0) gets its own. Equal (seed, distinct, i) give equal pages in
 * every guest, so two guests filled alike hold identical pages. Exactly one of `pattern`, `seed`.
 */
export const FillStepSchema = object({
  op: z.literal('fill'),
  ...range,
  /** Every byte of every page, 0..255. */
  pattern: byte().optional(),
  /** Seed of the content, a 32-bit unsigned integer. */
  seed: intIn(0, 0xffff_ffff, 'an integer from 0 to 4294967295').optional(),
  /** With `seed`: a different page for each gfn (default false: one page repeated). */
  distinct: bool().optional(),
  ...common,
}).superRefine((s, ctx) => {
  if ((s.pattern === undefined) === (s.seed === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['pattern'], message: 'give exactly one of pattern (a byte) and seed' });
  }
  if (s.distinct !== undefined && s.seed === undefined) {
    ctx.addIssue({ code: 'custom', path: ['distinct'], message: 'applies to seeded content only (give seed, not pattern)' });
  }
}, whenValid);

/** A partial write of `bytes` at byte `offset` of page `gfn`: a merged page takes a copy-on-write fault. */
export const WriteStepSchema = object({
  op: z.literal('write'),
  guest: name(),
  gfn: nonNegativeInt(),
  /** Byte offset in the page, 0..4095. */
  offset: intIn(0, PAGE_SIZE - 1, `an integer from 0 to ${PAGE_SIZE - 1}`),
  /** The bytes, 1 to 4096 of them, each 0..255; offset + bytes.length must be at most 4096. */
  bytes: z.array(byte(), must('an array of bytes')).min(1, must('a non-empty array of bytes')).max(PAGE_SIZE, must(`at most ${PAGE_SIZE} bytes`)),
  ...common,
}).superRefine((s, ctx) => {
  if (s.offset + s.bytes.length > PAGE_SIZE) {
    ctx.addIssue({
      code: 'custom',
      path: ['bytes'],
      message: `${s.bytes.length} bytes at offset ${s.offset} run past the ${PAGE_SIZE}-byte page`,
    });
  }
}, whenValid);

/**
 * madvise over a range: MADV_MERGEABLE / MADV_UNMERGEABLE (the hypervisor's `advise`), or
 * MADV_DONTNEED (the pages stay mapped, read as zeros and get a frame again when written;
 * unlike `discard`, which unmaps them).
 */
export const MadviseStepSchema = object({
  op: z.literal('madvise'),
  ...range,
  /** `"mergeable"`, `"unmergeable"` or `"dontneed"`. */
  advice: z.enum(['mergeable', 'unmergeable', 'dontneed'], must('"mergeable", "unmergeable" or "dontneed"')),
  ...common,
});

/** PR_SET_MEMORY_MERGE on a whole guest (the hypervisor's `setDomainMergeable`). */
export const SetMemoryMergeStepSchema = object({
  op: z.literal('set_memory_merge'),
  guest: name(),
  /** On or off. */
  on: bool(),
  ...common,
});

/** Unmaps a range (munmap; decrease_reservation): the pages are no longer populated, and a later madvise over them is ENOMEM. */
export const DiscardStepSchema = object({ op: z.literal('discard'), ...range, ...common });

/** Populates a range again (populate_physmap): the pages read as zeros. */
export const PopulateStepSchema = object({ op: z.literal('populate'), ...range, ...common });

/**
 * fork(2) of a whole guest: a new domain named `child`, of the guest's size, trust group and
 * max_pages, that maps every page of the guest copy-on-write (the hypervisor's sharing_fork) and
 * inherits its madvise and set_memory_merge state, as a forked process inherits its parent's
 * VM_MERGEABLE areas and PR_SET_MEMORY_MERGE. Later steps name the child like any guest; it runs
 * no workload of its own (`--verify` checks its pages as a guest's).
 */
export const ForkStepSchema = object({
  op: z.literal('fork'),
  /** The guest forked. */
  guest: name(),
  /** Domain name of the child, not used by any guest or earlier fork. */
  child: name(),
  ...common,
});

/** Sets a tunable of the strategy by name (KSM's sysfs names, e.g. `max_page_sharing`). */
export const SetStepSchema = object({
  op: z.literal('set'),
  /** The knob's name. */
  knob: name(),
  /** Its new value: a number, or a word for a knob that takes one (KSM's `advisor_mode`: `"scan-time"`). */
  value: z.union([z.number(), z.string()], must('a number or a word')),
  ...common,
});

/** Advances simulated time by `ms`: guests and the scanner run meanwhile. */
export const WaitStepSchema = object({
  op: z.literal('wait'),
  /** Simulated milliseconds, > 0. */
  ms: positive(),
  ...common,
});

/**
 * Runs until the strategy's `full_scans` counter has risen by `count` (refused before the run
 * for a strategy without one). Fails when it cannot rise: the scanner has nothing to do (say
 * `run` is 0) and no guest is running, or `timeoutS` simulated seconds pass.
 */
export const WaitFullScansStepSchema = object({
  op: z.literal('wait_full_scans'),
  /** Full scans to wait for, at least 1. */
  count: positiveInt(),
  /** Simulated seconds before the wait fails (default 120). */
  timeoutS: positive().default(DEFAULT_WAIT_TIMEOUT_S),
  ...common,
});

/** Records every statistic, global and per domain, under `checkpoints` in the report. */
export const CheckpointStepSchema = object({
  op: z.literal('checkpoint'),
  /** Name of the checkpoint, unique within the scenario. */
  label: name(),
  ...common,
});

/** One step of a scenario; steps run in order once every guest has booted. */
export const StepSchema = z.discriminatedUnion(
  'op',
  [
    FillStepSchema,
    WriteStepSchema,
    MadviseStepSchema,
    SetMemoryMergeStepSchema,
    DiscardStepSchema,
    PopulateStepSchema,
    ForkStepSchema,
    SetStepSchema,
    WaitStepSchema,
    WaitFullScansStepSchema,
    CheckpointStepSchema,
  ],
  {
    error: (issue) => {
      const input = issue.input;
      if (typeof input !== 'object' || input === null || Array.isArray(input)) return 'must be a step object';
      const op = (input as { op?: unknown }).op;
      return `${op === undefined ? 'missing; ' : ''}must be one of ${STEP_OPS.join(', ')}`;
    },
  },
);

/** A validated step, defaults filled in. */
export type Step = z.output<typeof StepSchema>;
/** A step as written. */
export type StepInput = z.input<typeof StepSchema>;
/** The `op` of a step. */
export type StepOp = Step['op'];
