import { createHash } from 'node:crypto';
import { z } from 'zod';
import { describeIssue, parseScenario, ScenarioError, type Scenario } from './scenario.js';
import { must, name, object } from './schema-helpers.js';

/** A dotted path into a scenario: names and array indexes, e.g. `dedup.pages_to_scan`, `guests.0.count`. */
const AXIS_PATH = /^[A-Za-z_$][\w$]*(\.([A-Za-z_$][\w$]*|\d+))*$/;

/**
 * A grid of scenarios: a base and axes, each a dotted scenario path with the values it takes.
 * The grid is the product of the axes; a job is one point of it.
 */
export const SweepSchema = object({
  /** Where the file's JSON Schema is, for editors; not read here. */
  $schema: z.string(must('a string: the path or URL of the JSON Schema of sweep files')).optional(),
  /** Name of the sweep, shown in its report (required). */
  name: name(),
  /** The base scenario: a path relative to the sweep file, or a scenario written inline. */
  base: z.union([name(), z.record(z.string(), z.unknown())], must('a path to a scenario file, or a scenario object')),
  /**
   * From a dotted scenario path (`"dedup.strategy"`, `"machine.memoryMiB"`, `"seed"`,
   * `"guests.0.count"`) to the values it takes, at least one each.
   */
  axes: z
    .record(
      z.string().regex(AXIS_PATH),
      z.array(z.unknown(), must('an array of the values the path takes')).min(1, must('a non-empty array of values')),
      { error: (issue) => (issue.code === 'invalid_key' ? 'must be a dotted scenario path, e.g. dedup.strategy or guests.0.count' : 'must be an object from scenario paths to their values') },
    )
    .refine((axes) => Object.keys(axes).length > 0, 'must name at least one axis'),
});

/** A sweep as written. */
export type SweepInput = z.input<typeof SweepSchema>;
/** A validated sweep. */
export type Sweep = z.output<typeof SweepSchema>;

/** One point of a sweep's grid. */
export interface SweepJob {
  /** Hash of its resolved scenario (16 hex digits): equal scenarios, equal ids, whatever the sweep. */
  readonly id: string;
  /** The value of each axis at this point, in the sweep's order of axes. */
  readonly axes: Readonly<Record<string, unknown>>;
  /** The scenario it runs, validated, defaults filled in. */
  readonly scenario: Scenario;
}

/** A sweep file that is not valid, or a point of its grid that is not a valid scenario. */
export class SweepError extends Error {
  override readonly name = 'SweepError';
  /** One line per problem, each naming the field or the point. */
  readonly issues: readonly string[];

  constructor(issues: readonly string[]) {
    super(`invalid sweep:\n  ${issues.join('\n  ')}`);
    this.issues = issues;
  }
}

/** Validates `input` (parsed JSON) as a sweep file. @throws SweepError naming every bad field. */
export function parseSweep(input: unknown): Sweep {
  const result = SweepSchema.safeParse(input);
  if (!result.success) throw new SweepError(result.error.issues.flatMap(describeIssue));
  return result.data;
}

/**
 * Every point of `sweep`'s grid over `base` (the base scenario as written, its file already
 * read), in order: the last axis varies fastest. Each point is `base` with every axis's path set
 * to its value, validated as a scenario; points that resolve to one scenario are one job.
 * @throws SweepError naming each point that is not a valid scenario (by its axis values and the
 *   scenario's field), or a path that does not lead into the base.
 */
export function expandSweep(sweep: Sweep, base: unknown): SweepJob[] {
  const axes = Object.entries(sweep.axes);
  const jobs: SweepJob[] = [];
  const seen = new Set<string>();
  const issues: string[] = [];
  const points = axes.reduce<unknown[][]>((acc, [, values]) => acc.flatMap((p) => values.map((v) => [...p, v])), [[]]);
  for (const point of points) {
    const values = Object.fromEntries(axes.map(([path], i) => [path, point[i]]));
    const where = `point ${JSON.stringify(values)}`;
    const scenario = structuredClone(base) as Record<string, unknown>;
    try {
      axes.forEach(([path], i) => setPath(scenario, path, point[i]));
      const parsed = parseScenario(scenario);
      const id = jobId(parsed);
      if (seen.has(id)) continue;
      seen.add(id);
      jobs.push({ id, axes: values, scenario: parsed });
    } catch (e) {
      if (!(e instanceof ScenarioError || e instanceof SweepError)) throw e;
      issues.push(...e.issues.map((i) => `${where}: ${i}`));
      if (issues.length >= 20) break;
    }
  }
  if (issues.length > 0) throw new SweepError(issues);
  return jobs;
}

/** The id of a job running `scenario`: a hash of its canonical JSON (keys sorted, `$schema` left out). */
export function jobId(scenario: Scenario): string {
  const { $schema: _schema, ...rest } = scenario;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex').slice(0, 16);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Sets `path` (dotted) in `target` to `value`, making objects along the way; an array's element must exist. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  const fail = (why: string): never => {
    throw new SweepError([`axes["${path}"]: ${why} in the base scenario`]);
  };
  let at: Record<string, unknown> = target;
  keys.forEach((key, i) => {
    const where = keys.slice(0, i).join('.');
    if (Array.isArray(at) && !(/^\d+$/.test(key) && Number(key) < at.length)) fail(`${where} has no element ${key}`);
    if (i === keys.length - 1) {
      at[key] = value;
      return;
    }
    if (at[key] === undefined) at[key] = {};
    const next = at[key];
    if (next === null || typeof next !== 'object') fail(`${keys.slice(0, i + 1).join('.')} is not an object or array`);
    at = next as Record<string, unknown>;
  });
}
