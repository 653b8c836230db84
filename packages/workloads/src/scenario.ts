import { z } from 'zod';
import { DOMID_FIRST_RESERVED, mibToPages, PAGE_SIZE } from '@pagevisor/types';
import { bool, fraction, intIn, must, name, nonNegative, object, positive, positiveInt, whenValid } from './schema-helpers.js';
import { StepSchema, type Step } from './steps.js';
import { PluginSpecSchema } from './plugin-spec.js';
import { SwapConfigSchema } from './swap-config.js';
import { IMAGE_FORMATS } from './images/image-file.js';

/** Largest machine this schema accepts, in MiB (4 TiB: 2^30 frames, indexable by an Int32Array). */
export const MAX_MACHINE_MIB = 4 * 1024 * 1024;

/**
 * Most timeline samples a scenario may ask for: (longest boot + the longer of durationS and the
 * steps' waits, each wait_full_scans counted at its timeout) / sampleIntervalS.
 */
export const MAX_SAMPLES = 100_000;

/** The host: its RAM and the frame allocator the hypervisor uses. */
export const MachineSchema = object({
  /**
   * Machine RAM in MiB (required), 256 frames of 4 KiB per MiB. The hypervisor keeps one frame
   * as its zero frame, so even the smallest machine (1 MiB) has 255 frames for guests.
   */
  memoryMiB: intIn(1, MAX_MACHINE_MIB, `an integer from 1 to ${MAX_MACHINE_MIB} (MiB; one frame goes to the hypervisor's zero frame)`),
  /** Frame allocator: `"buddy"` (default, Xen's page_alloc), `"freelist"`, or a plugin (see {@link PluginSpecSchema}). */
  allocator: PluginSpecSchema.default('buddy'),
  /** NUMA nodes, 1..64 (default 1): frames are split into equal contiguous ranges, one a node. */
  numaNodes: intIn(1, 64, 'an integer from 1 to 64').default(1),
  /** Swap (default none): see `swap-config.ts`. */
  swap: SwapConfigSchema.optional(),
  /**
   * De-duplication side-channel mitigations (default none): `zeroPagesOnly` merges only pages of
   * zeros; `uniformWrites` makes merge candidates fault alike on write, merged or not (VUsion).
   * The third, trust groups, is the guests' `trustGroup` with `dedup.trustGroups`.
   */
  mitigations: object({ zeroPagesOnly: bool().default(false), uniformWrites: bool().default(false) }).prefault({}),
});

/**
 * The de-duplication strategy and its options: `{ "strategy": "ksm", "pages_to_scan": 1000 }`.
 * `strategy` is a built-in's name (`"inline"`, the default, `"ksm"`, `"esx"`, `"none"`) or a
 * plugin's module specifier (`"./my-dedup.mjs"`, a package name). Every other field is an option
 * passed as it is to the strategy's plugin, which checks it when the run starts: an unknown or bad
 * option is an error naming the plugin and the field.
 */
export const DedupConfigSchema = z.looseObject(
  {
    strategy: z.string(must('a built-in strategy or a module specifier')).min(1, must('a built-in strategy or a module specifier')).default('inline'),
  },
  must('an object'),
);

/** A validated `dedup` field. */
export type DedupConfig = z.output<typeof DedupConfigSchema>;

/** The options of a `dedup` field: every field but `strategy`. */
export function dedupOptionsOf(config: DedupConfig): Record<string, unknown> {
  const { strategy: _strategy, ...options } = config;
  return options;
}

/**
 * The guest's OS image, in one of two forms:
 * - synthetic, `{ id, fraction }`: pages generated from the id, shared by every guest with the
 *   same id, filling `fraction` of the guest;
 * - a file, `{ path, format }`: the pages of a real guest memory image (`"raw"` dump, QEMU
 *   `"elf"` core or `"proc"` capture, see `images/`) at gfns `[0, image pages)`. A relative path
 *   is relative to the scenario file's directory (`resolveImagePaths`); the file is read when the
 *   guest boots, and `checkScenarioImages` validates it and checks that it fits the guest.
 */
export const ImageSchema = object({
  /** Identifies a synthetic image's content (default `"none"`). */
  id: name().default('none'),
  /** Fraction of the guest's pages holding a synthetic image, 0..1 (default 0). */
  fraction: fraction().default(0),
  /** A file image: its path (with `format`; not with `id` or `fraction`). */
  path: name().optional(),
  /** A file image's format: `"raw"`, `"elf"` or `"proc"` (required with `path`). */
  format: z.enum(IMAGE_FORMATS, must(IMAGE_FORMATS.map((f) => `"${f}"`).join(', ').replace(/, ([^,]*)$/, ' or $1'))).optional(),
}).superRefine((image, ctx) => {
  if (image.path === undefined) {
    if (image.format !== undefined) ctx.addIssue({ code: 'custom', path: ['path'], message: 'missing; a file image needs a path with its format' });
    return;
  }
  if (image.format === undefined) {
    ctx.addIssue({ code: 'custom', path: ['format'], message: `missing; must be ${IMAGE_FORMATS.map((f) => `"${f}"`).join(', ').replace(/, ([^,]*)$/, ' or $1')} (the file's format)` });
  }
  if (image.fraction !== 0) {
    ctx.addIssue({ code: 'custom', path: ['fraction'], message: 'applies to a synthetic image only; a file image takes its size from the file' });
  }
  if (image.id !== 'none') {
    ctx.addIssue({ code: 'custom', path: ['id'], message: 'applies to a synthetic image only; a file image is identified by its path' });
  }
}, whenValid);

/**
 * Where a guest's steady-state accesses go: a window of `fraction` of its pages, moved to a new
 * seeded position every `moveEveryS` simulated seconds.
 */
export const WorkingSetSchema = object({
  /** Fraction of the guest's pages in the window, in (0, 1]. */
  fraction: fraction().refine((f) => f > 0, must('a number greater than 0 and at most 1')),
  /** Simulated seconds between moves of the window (> 0). */
  moveEveryS: positive(),
});

/** One kind of guest; `count` identical-in-shape guests are started from it. */
export const GuestSpecSchema = object({
  /** Name of the guest; with `count > 1` the domains are named `name-0`, `name-1` ... (required). */
  name: name(),
  /** Number of guests of this kind (default 1). */
  count: positiveInt().default(1),
  /** Guest RAM in MiB (required). */
  memoryMiB: positiveInt(),
  /** The guest's OS image, synthetic or a file (default: synthetic, none, fraction 0). */
  image: ImageSchema.prefault({}),
  /** Fraction of pages left all zero after boot (default 0). */
  zeroFraction: fraction().default(0),
  /** Page writes per simulated second in steady state (default 0). */
  writeRatePagesPerS: nonNegative().default(0),
  /** Page reads per simulated second in steady state (default 0; left out of reports when absent). */
  readRatePagesPerS: nonNegative().optional(),
  /** Working set of steady-state reads and writes (default: every page, uniformly). */
  workingSet: WorkingSetSchema.optional(),
  /** Bytes changed by a partial write, 1..4096 (default 64). */
  writeBytes: intIn(1, PAGE_SIZE, `an integer from 1 to ${PAGE_SIZE}`).default(64),
  /** Fraction of writes that replace a whole page with new private content (default 0). */
  wholePageWriteFraction: fraction().default(0),
  /** Pages booted (populated and written) per simulated second (default 262144: 1 GiB/s). */
  bootPagesPerS: positive().default(262_144),
  /**
   * Whether the guest's memory is mergeable from its creation (default true), as QEMU marks guest
   * RAM with MADV_MERGEABLE: the simulator calls the hypervisor's `setDomainMergeable(dom, true)`.
   */
  mergeable: bool().default(true),
  /**
   * Trust group of the guest's domains (default 0): only domains of one group share frames, the
   * zero frame aside (ESX's salting). With `dedup.trustGroups` each group gets its own index.
   */
  trustGroup: intIn(0, 0xffff, 'an integer from 0 to 65535').default(0),
}).superRefine((g, ctx) => {
  const sum = g.image.fraction + g.zeroFraction;
  if (sum > 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['zeroFraction'],
      message: `image.fraction + zeroFraction must be at most 1 (the rest is private data); got ${g.image.fraction} + ${g.zeroFraction} = ${sum}`,
    });
  }
}, whenValid);

/** A simulation: a machine, a dedup strategy, the guests that run on it and the steps run once they have booted. */
export const ScenarioSchema = object({
  /** Where the file's JSON Schema is, for editors (e.g. `./node_modules/@pagevisor/workloads/scenario.schema.json`); not read here. */
  $schema: z.string(must('a string: the path or URL of the JSON Schema of scenario files')).optional(),
  /** Name of the scenario, shown in reports (required). */
  name: name(),
  /** Seed of every random choice and of private page content, a 32-bit unsigned integer (default 1). */
  seed: intIn(0, 0xffff_ffff, 'an integer from 0 to 4294967295').default(1),
  /** The host (required: at least `memoryMiB`). */
  machine: MachineSchema,
  /** De-duplication (default `{ strategy: "inline" }`). */
  dedup: DedupConfigSchema.prefault({}),
  /** Simulated seconds of steady state each guest runs after its boot (default 60). */
  durationS: nonNegative().default(60),
  /** Simulated seconds between timeline samples (default 1). */
  sampleIntervalS: positive().default(1),
  /** The guests, at least one kind (required). */
  guests: z.array(GuestSpecSchema, must('an array of guests')).min(1, must('a non-empty array of guests')),
  /** Steps run in order once every guest has booted (default none); see `steps.ts`. */
  steps: z.array(StepSchema, must('an array of steps')).default([]),
}).superRefine((s, ctx) => {
  const total = s.guests.reduce((n, g) => n + g.count, 0);
  // Domain 0 is the control domain; guests take ids 1 .. DOMID_FIRST_RESERVED - 1.
  const maxGuests = DOMID_FIRST_RESERVED - 1;
  if (total > maxGuests) {
    ctx.addIssue({
      code: 'custom',
      path: ['guests'],
      message: `at most ${maxGuests} guests in all (domain ids run out); got ${total}`,
    });
  }
  const seen = new Map<string, number>();
  s.guests.forEach((g, i) => {
    for (const n of domainNames(g)) {
      const first = seen.get(n);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['guests', i, 'name'],
          message: `domain name "${n}" is also used by guests[${first}]; names must be unique`,
        });
        return;
      }
      seen.set(n, i);
    }
  });
  checkSteps(s.steps, seen, s.guests, ctx);
  // Cap the samples so a typo (sampleIntervalS: 0.000001) cannot produce a gigabyte report.
  const bootS = Math.max(...s.guests.map((g) => mibToPages(g.memoryMiB) / g.bootPagesPerS));
  const stepsS = longestStepsS(s.steps);
  const samples = (bootS + Math.max(s.durationS, stepsS)) / s.sampleIntervalS;
  if (samples > MAX_SAMPLES) {
    ctx.addIssue({
      code: 'custom',
      path: ['sampleIntervalS'],
      message: `gives ${Math.ceil(samples)} timeline samples over the run (boot ${bootS} s + the longer of durationS ${s.durationS} s and the steps' waits ${stepsS} s); at most ${MAX_SAMPLES}`,
    });
  }
}, whenValid);

/** Longest simulated seconds the steps can take: their waits, each wait_full_scans at its timeout. */
function longestStepsS(steps: readonly Step[]): number {
  let s = 0;
  for (const step of steps) {
    if (step.op === 'wait') s += step.ms / 1000;
    else if (step.op === 'wait_full_scans') s += step.timeoutS;
  }
  return s;
}

/**
 * Steps name existing guests (or children of earlier forks) and stay inside them; checkpoint
 * labels are unique. `guestNames` maps each guest's domain name to the index of its spec.
 */
function checkSteps(steps: readonly Step[], guestNames: ReadonlyMap<string, number>, guests: readonly GuestSpec[], ctx: z.RefinementCtx): void {
  const labels = new Map<string, number>();
  // A fork's child is a guest of its parent's spec from its step on.
  const seen = new Map(guestNames);
  const listed = (): string => {
    const known = [...seen.keys()];
    return known.length <= 8 ? known.join(', ') : `${known.slice(0, 8).join(', ')} ...`;
  };
  steps.forEach((step, i) => {
    if (step.op === 'checkpoint') {
      const first = labels.get(step.label);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['steps', i, 'label'], message: `"${step.label}" is also the label of steps[${first}]; labels must be unique` });
      } else {
        labels.set(step.label, i);
      }
      return;
    }
    if (!('guest' in step)) return;
    const spec = seen.get(step.guest);
    if (spec === undefined) {
      ctx.addIssue({ code: 'custom', path: ['steps', i, 'guest'], message: `no guest named "${step.guest}" at this step; guests are ${listed()}` });
      return;
    }
    if (step.op === 'fork') {
      if (seen.has(step.child)) ctx.addIssue({ code: 'custom', path: ['steps', i, 'child'], message: `"${step.child}" is already a guest's name; a fork's child needs a new one` });
      else seen.set(step.child, spec);
      return;
    }
    if (!('gfn' in step)) return;
    const pages = mibToPages(guests[spec]!.memoryMiB);
    if (step.gfn >= pages) {
      ctx.addIssue({ code: 'custom', path: ['steps', i, 'gfn'], message: `${step.gfn} is past guest "${step.guest}"'s ${pages} pages (gfns 0 .. ${pages - 1})` });
    } else if ('count' in step && step.gfn + step.count > pages) {
      ctx.addIssue({
        code: 'custom',
        path: ['steps', i, 'count'],
        message: `${step.count} pages from gfn ${step.gfn} run past guest "${step.guest}"'s ${pages} pages (at most ${pages - step.gfn})`,
      });
    }
  });
}

/** A validated scenario with every default filled in. */
export type Scenario = z.output<typeof ScenarioSchema>;
/** A scenario as written: optional fields may be left out. */
export type ScenarioInput = z.input<typeof ScenarioSchema>;
/** One kind of guest of a validated scenario. */
export type GuestSpec = z.output<typeof GuestSpecSchema>;

/** Domain names of the guests a spec starts: `name` alone, or `name-0` ... `name-(count-1)`. */
export function domainNames(spec: Pick<GuestSpec, 'name' | 'count'>): string[] {
  if (spec.count === 1) return [spec.name];
  return Array.from({ length: spec.count }, (_, i) => `${spec.name}-${i}`);
}

/** A scenario that failed validation; `issues` holds one `path: problem` line per bad field. */
export class ScenarioError extends Error {
  override readonly name = 'ScenarioError';
  /** One line per problem, each starting with the field's path, e.g. `guests[0].memoryMiB: must be a positive integer`. */
  readonly issues: readonly string[];

  constructor(issues: readonly string[]) {
    super(`invalid scenario:\n  ${issues.join('\n  ')}`);
    this.issues = issues;
  }
}

/** Formats a zod path as `guests[0].image.fraction`; the empty path is `(scenario)`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(scenario)' : out;
}

/** One line per problem of a zod issue, each naming its field (an unknown key: `x: unknown field`). */
export function describeIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown field`);
  }
  return [`${formatPath(issue.path)}: ${issue.message}`];
}

/**
 * Validates `input` (e.g. parsed JSON) as a scenario and fills in defaults.
 * @throws ScenarioError naming every bad field by its path.
 */
export function parseScenario(input: unknown): Scenario {
  const result = ScenarioSchema.safeParse(input);
  if (!result.success) throw new ScenarioError(result.error.issues.flatMap(describeIssue));
  return result.data;
}
