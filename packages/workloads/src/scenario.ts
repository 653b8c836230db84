import { z } from 'zod';
import { DOMID_FIRST_RESERVED, mibToPages, PAGE_SIZE } from '@pagevisor/types';

/**
 * Error message for a field: "missing; must be ..." when the key is absent, "must be ..." when it
 * holds the wrong thing. zod reports both as `invalid_type`; only the input tells them apart.
 */
function must(what: string): { error: (issue: { input?: unknown }) => string } {
  return {
    error: (issue) => (issue.input === undefined ? `missing; must be ${what}` : `must be ${what}`),
  };
}

function intIn(min: number, max: number, what: string) {
  const m = must(what);
  return z.number(m).int(m).min(min, m).max(max, m);
}

function positiveInt() {
  return intIn(1, Number.MAX_SAFE_INTEGER, 'a positive integer');
}

function fraction() {
  const m = must('a number from 0 to 1');
  return z.number(m).min(0, m).max(1, m);
}

function nonNegative() {
  const m = must('a number >= 0');
  return z.number(m).min(0, m);
}

function positive() {
  const m = must('a number > 0');
  return z.number(m).positive(m);
}

function name() {
  const m = must('a non-empty string');
  return z.string(m).min(1, m);
}

function object<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.strictObject(shape, must('an object'));
}

/**
 * Cross-field checks run only on fields that passed their own checks: a sum over a malformed
 * guest list would say nothing useful, or throw.
 */
const whenValid = { when: (payload: { issues: readonly unknown[] }) => payload.issues.length === 0 };

/** Largest machine this schema accepts, in MiB (4 TiB: 2^30 frames, indexable by an Int32Array). */
export const MAX_MACHINE_MIB = 4 * 1024 * 1024;

/** Most timeline samples a scenario may ask for: (longest boot + durationS) / sampleIntervalS. */
export const MAX_SAMPLES = 100_000;

/** The host: its RAM and the frame allocator the hypervisor uses. */
export const MachineSchema = object({
  /**
   * Machine RAM in MiB (required), 256 frames of 4 KiB per MiB. The hypervisor keeps one frame
   * as its zero frame, so even the smallest machine (1 MiB) has 255 frames for guests.
   */
  memoryMiB: intIn(1, MAX_MACHINE_MIB, `an integer from 1 to ${MAX_MACHINE_MIB} (MiB; one frame goes to the hypervisor's zero frame)`),
  /** Frame allocator: `"buddy"` (default, Xen's page_alloc) or `"freelist"`. */
  allocator: z.enum(['buddy', 'freelist'], must('"buddy" or "freelist"')).default('buddy'),
});

/** The de-duplication strategy. An object so that strategy options can join it later. */
export const DedupConfigSchema = object({
  /** `"inline"` (default: hash index at write/populate time) or `"none"`. */
  strategy: z.enum(['inline', 'none'], must('"inline" or "none"')).default('inline'),
});

/** Pages of a shared OS image: guests with the same image id have identical image pages. */
export const ImageSchema = object({
  /** Identifies the image's content (default `"none"`). */
  id: name().default('none'),
  /** Fraction of the guest's pages holding the image, 0..1 (default 0). */
  fraction: fraction().default(0),
});

/** One kind of guest; `count` identical-in-shape guests are started from it. */
export const GuestSpecSchema = object({
  /** Name of the guest; with `count > 1` the domains are named `name-0`, `name-1` ... (required). */
  name: name(),
  /** Number of guests of this kind (default 1). */
  count: positiveInt().default(1),
  /** Guest RAM in MiB (required). */
  memoryMiB: positiveInt(),
  /** The guest's OS image (default: none, fraction 0). */
  image: ImageSchema.prefault({}),
  /** Fraction of pages left all zero after boot (default 0). */
  zeroFraction: fraction().default(0),
  /** Page writes per simulated second in steady state (default 0). */
  writeRatePagesPerS: nonNegative().default(0),
  /** Bytes changed by a partial write, 1..4096 (default 64). */
  writeBytes: intIn(1, PAGE_SIZE, `an integer from 1 to ${PAGE_SIZE}`).default(64),
  /** Fraction of writes that replace a whole page with new private content (default 0). */
  wholePageWriteFraction: fraction().default(0),
  /** Pages booted (populated and written) per simulated second (default 262144: 1 GiB/s). */
  bootPagesPerS: positive().default(262_144),
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

/** A simulation: a machine, a dedup strategy and the guests that run on it. */
export const ScenarioSchema = object({
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
  // Cap the samples so a typo (sampleIntervalS: 0.000001) cannot produce a gigabyte report.
  const bootS = Math.max(...s.guests.map((g) => mibToPages(g.memoryMiB) / g.bootPagesPerS));
  const samples = (bootS + s.durationS) / s.sampleIntervalS;
  if (samples > MAX_SAMPLES) {
    ctx.addIssue({
      code: 'custom',
      path: ['sampleIntervalS'],
      message: `gives ${Math.ceil(samples)} timeline samples over the run (boot ${bootS} s + durationS ${s.durationS} s); at most ${MAX_SAMPLES}`,
    });
  }
}, whenValid);

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

function describeIssue(issue: z.core.$ZodIssue): string[] {
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
