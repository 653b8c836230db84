import fc from 'fast-check';
import { createPart, mixSeed, PluginError, pluginProblems, type EvictionPolicy, type FrameAllocator, type Plugin, type PluginKind } from '@pagevisor/types';
import { allocatorOps, policyOps, runAllocatorAlone, runPolicyAlone, type AloneRun } from './alone.js';
import { configurationsFor, type AloneConfiguration, type CheckedKind, type Configuration, type HostConfiguration } from './configurations.js';
import { buildHost, PAGE_CONTENTS, runOnHost, TMEM_CONTENTS, type UnderTest } from './host.js';
import { modelOps } from './model-ops.js';
import type { ModelOp } from '@pagevisor/hypervisor';

/** Sequences per configuration unless `runs` says otherwise: one call of a kit function stays within about 20 s on a slow 2-core machine. */
export const DEFAULT_RUNS = 30;
/** The fast-check seed unless `seed` says otherwise (one seed, the same sequences). */
export const DEFAULT_SEED = 20261126;
/**
 * Below this many sequences per configuration the kit reports the generator's coverage (every op
 * kind carried out, the refusals it aims at) without requiring it: so few may miss some.
 */
export const COVERAGE_MIN_RUNS = 20;
/**
 * Rounds of `runs` more sequences (each with a seed derived from the kit's) the kit runs in a
 * configuration whose sequences have not yet met all the generator aims at, before it fails it.
 */
export const EXTRA_ROUNDS = 2;

/** Options of {@link checkDedupStrategy}, {@link checkEvictionPolicy} and {@link checkAllocator}. */
export interface KitOptions {
  /**
   * The plugin's options (what a scenario would give it), checked by the plugin's own `options`
   * check in every configuration: one object for all, or a function of the configuration.
   */
  readonly options?: Readonly<Record<string, unknown>> | ((configuration: Configuration) => Readonly<Record<string, unknown>>);
  /** Random sequences per configuration (default {@link DEFAULT_RUNS}). */
  readonly runs?: number;
  /** The fast-check seed (default {@link DEFAULT_SEED}); the message of a failure names it. */
  readonly seed?: number;
  /** Only the configurations of these names (see {@link configurationsFor}), or those the function accepts. */
  readonly configurations?: readonly string[] | ((name: string) => boolean);
  /** Shrink a failing sequence to a small one before reporting it (default true; false reports the first found, sooner). */
  readonly shrink?: boolean;
}

/** What the kit ran in one configuration, and what the plugin's part did there. */
export interface ConfigurationReport {
  readonly name: string;
  /** `'host'`: the reference-model check on a hypervisor; `'alone'`: the part by itself against a model of its own. */
  readonly mode: 'host' | 'alone';
  /** The plugin's options in this configuration. */
  readonly options: Readonly<Record<string, unknown>>;
  readonly sequences: number;
  readonly operations: number;
  /** Operations carried out, by kind. */
  readonly applied: Readonly<Record<string, number>>;
  /** Operations refused, by errno (alone: by errno or `INVALID_MFN`). */
  readonly refused: Readonly<Record<string, number>>;
  /** Host: sequences in which the strategy itself merged a page (a whole-page write came to map a shared frame or the zero frame, or a scan left more pages sharing). */
  readonly runsMerged: number;
  /** Host: sequences in which some frame was shared, by the strategy or by the sharing hypercalls. */
  readonly runsSharing: number;
  /** Host: sequences in which pages were swapped back in (configurations with swap). */
  readonly runsSwappedIn: number;
  readonly swapOuts: number;
  readonly swapIns: number;
  /** Host: swap-ins (page faults on paged pages) that mapped a resident frame: the swap cache, or the index. */
  readonly swapInsShared: number;
  /** Host: paged-out pages of the parent at successful forks and fork resets. */
  readonly pagedAtFork: number;
  /** Host: for each counter of the dedup strategy's `stats()`, the sequences in which it was above 0 after some step. */
  readonly counters: Readonly<Record<string, number>>;
  /** Allocator alone: the orders of the blocks it handed out. */
  readonly orders: readonly number[];
  /**
   * Whether the part did anything useful here: a dedup strategy merged a page in some sequence, an
   * eviction policy's victims went out and came back, a part alone handed out frames or victims
   * (an allocator on a host always: it allocated every frame).
   */
  readonly useful: boolean;
  /**
   * The generator's coverage: op kinds never carried out and refusals never met; required when
   * `checked` (runs of at least {@link COVERAGE_MIN_RUNS}), when up to {@link EXTRA_ROUNDS}
   * rounds of `runs` more sequences run until it is met (`sequences` counts them).
   */
  readonly coverage: { readonly checked: boolean; readonly missing: readonly string[] };
  readonly seconds: number;
}

/** What one kit call ran. */
export interface KitReport {
  readonly kind: CheckedKind;
  readonly plugin: string;
  readonly seed: number;
  readonly runs: number;
  readonly configurations: readonly ConfigurationReport[];
  readonly seconds: number;
}

/** Op kinds every host configuration must see carried out, and with tmem the tmem ops. */
const HOST_KINDS = ['share', 'madvise', 'fork', 'forkReset', 'rangeShare', 'addPhysmap', 'setSharing', 'pause', 'claim', 'destroy'];
/** Xen's paging ops: with swap, a page paged out by hand and one brought back by hand. */
const PAGING_KINDS = ['pageOut', 'pagingPrep'];
const TMEM_KINDS = ['tmemNewPool', 'tmemPut', 'tmemGet', 'tmemFlushPage', 'tmemFlushObject', 'tmemDestroyPool'];

/** The generator's coverage of `config`: what it should have met and did not. */
function missingCoverage(config: Configuration, kind: CheckedKind, applied: Readonly<Record<string, number>>, refused: Readonly<Record<string, number>>): string[] {
  const missing: string[] = [];
  const need = (what: Readonly<Record<string, number>>, names: readonly string[], label: string) => {
    for (const n of names) if ((what[n] ?? 0) === 0) missing.push(`${label} ${n}`);
  };
  if (config.mode === 'alone') {
    need(applied, kind === 'allocator' ? ['alloc', 'free'] : ['insert', 'touch', 'remove', 'evict'], 'op');
    return missing;
  }
  need(applied, [...HOST_KINDS, ...(config.tmem === undefined ? [] : TMEM_KINDS), ...(config.swap === undefined ? [] : PAGING_KINDS)], 'op');
  // Paused accesses, destroying a parent, sharing disabled, other trust groups.
  need(refused, ['EAGAIN', 'EBUSY', 'EOPNOTSUPP', ...(config.trustGroups === undefined ? [] : ['EPERM'])], 'refusal');
  return missing;
}

const add = (into: Record<string, number>, from: Readonly<Record<string, number>>) => {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
};

/** The fast-check counterexample of a failed run, in words: the sequence, one op a line. */
function counterexampleText(ops: unknown): string {
  if (!Array.isArray(ops)) return JSON.stringify(ops);
  const lines = ops.slice(0, 300).map((op, i) => `    ${i}: ${JSON.stringify(op)}`);
  if (ops.length > 300) lines.push(`    ... ${ops.length - 300} more`);
  return lines.join('\n');
}

function label(kind: PluginKind, plugin: string): string {
  return `${kind} plugin "${plugin}"`;
}

/** Runs one configuration's sequences and returns its report; throws an Error naming everything on a failure. */
async function runConfiguration(
  kind: CheckedKind,
  plugin: Plugin<PluginKind, unknown>,
  config: Configuration,
  partSeed: number,
  options: Readonly<Record<string, unknown>>,
  run: { readonly runs: number; readonly seed: number; readonly shrink: boolean },
): Promise<ConfigurationReport> {
  const started = performance.now();
  const under: UnderTest = { plugin, options };
  const where = `${label(kind, plugin.name)} in configuration "${config.name}"`;
  // Build once outside the property: options refused or create throwing is not a counterexample.
  try {
    if (config.mode === 'host') await buildHost(config, partSeed, under);
    else createAlone(kind, plugin, config, partSeed, options);
  } catch (e) {
    // The plugin's own verdict (options refused, create threw) as it is; anything else in words.
    const message = e instanceof PluginError ? e.message : `building the ${config.mode === 'host' ? 'host' : 'part'} threw ${String(e)}`;
    throw new Error(`testkit: ${where}: ${message}`, { cause: e });
  }
  const applied: Record<string, number> = {};
  const refused: Record<string, number> = {};
  const counters: Record<string, number> = {};
  const orders = new Set<number>();
  let sequences = 0;
  let operations = 0;
  let runsMerged = 0;
  let runsSharing = 0;
  let runsSwappedIn = 0;
  let swapIns = 0;
  let swapInsShared = 0;
  let swapOuts = 0;
  let pagedAtFork = 0;
  const account = (ops: readonly unknown[], a: Readonly<Record<string, number>>, r: Readonly<Record<string, number>>) => {
    sequences++;
    operations += ops.length;
    add(applied, a);
    add(refused, r);
  };
  let property: fc.IAsyncProperty<[unknown[]]>;
  if (config.mode === 'host') {
    const host: HostConfiguration = config;
    const arbitrary = modelOps({ groups: host.trustGroups !== undefined, contents: PAGE_CONTENTS, tmemContents: TMEM_CONTENTS, tmem: host.tmem !== undefined, primeSharing: true });
    property = fc.asyncProperty(arbitrary, async (ops: ModelOp[]) => {
      const r = await runOnHost(host, partSeed, under, ops);
      account(ops, r.summary.appliedByKind, r.summary.refusedByErrno);
      if (r.merged) runsMerged++;
      if (r.summary.peakPagesSharing > 0) runsSharing++;
      if (r.swapIns > 0) runsSwappedIn++;
      swapIns += r.swapIns;
      swapInsShared += r.swapInsShared;
      swapOuts += r.swapOuts;
      pagedAtFork += r.summary.pagedAtFork;
      for (const c of r.countersMoved) counters[c] = (counters[c] ?? 0) + 1;
    }) as fc.IAsyncProperty<[unknown[]]>;
  } else {
    const alone: AloneConfiguration = config;
    const make = () => createAlone(kind, plugin, alone, partSeed, options);
    if (kind === 'allocator') {
      property = fc.asyncProperty(allocatorOps(), async (ops) => {
        const r: AloneRun = runAllocatorAlone(make as () => FrameAllocator, alone.frames, ops);
        account(ops, r.applied, r.refused);
        for (const o of r.orders) orders.add(o);
      }) as fc.IAsyncProperty<[unknown[]]>;
    } else {
      property = fc.asyncProperty(policyOps(alone.frames), async (ops) => {
        const r = runPolicyAlone(make as () => EvictionPolicy, ops);
        account(ops, r.applied, r.refused);
      }) as fc.IAsyncProperty<[unknown[]]>;
    }
  }
  // Sequences in rounds of `runs`, each with its own fast-check seed (the first the kit's): while
  // the generator has not met all it aims at, up to EXTRA_ROUNDS more rounds run.
  const checked = run.runs >= COVERAGE_MIN_RUNS;
  const seeds: number[] = [];
  let missing: string[] = [];
  for (let round = 0; round <= (checked ? EXTRA_ROUNDS : 0); round++) {
    const seed = round === 0 ? run.seed : mixSeed(run.seed, round);
    seeds.push(seed);
    const details = await fc.check(property, { numRuns: run.runs, seed, endOnFailure: !run.shrink });
    if (details.failed) {
      const error = details.errorInstance;
      const message = error instanceof Error ? error.message : String(error);
      const ops = details.counterexample?.[0];
      const shrunk = run.shrink ? `, shrunk ${details.numShrinks} time${details.numShrinks === 1 ? '' : 's'}` : ', not shrunk';
      const seedText = round === 0 ? `seed ${seed}` : `seed ${seed}: round ${round + 1} of the kit's seed ${run.seed}`;
      throw new Error(
        `testkit: ${where} failed (${seedText}, ${run.runs} runs): ${message}\n` +
          `  counterexample (sequence ${details.numRuns} of ${run.runs}${shrunk}; fast-check path "${details.counterexamplePath ?? ''}"), ${Array.isArray(ops) ? ops.length : '?'} operations:\n${counterexampleText(ops)}`,
        { cause: error },
      );
    }
    if (details.interrupted) throw new Error(`testkit: ${where}: fast-check was interrupted after ${details.numRuns} runs`);
    missing = missingCoverage(config, kind, applied, refused);
    if (missing.length === 0) break;
  }
  if (checked && missing.length > 0) {
    throw new Error(
      `testkit: ${where} (seeds ${seeds.join(', ')}, ${sequences} sequences): the generated sequences never met ${missing.join(', ')}: ` +
        "the check proves too little (the sequences are the kit's; raise runs or try another seed)",
    );
  }
  const useful =
    config.mode === 'alone'
      ? (applied[kind === 'allocator' ? 'alloc' : 'evict'] ?? 0) > 0
      : kind === 'dedup'
        ? runsMerged > 0
        : kind === 'eviction-policy'
          ? runsSwappedIn > 0
          : sequences > 0;
  return {
    name: config.name,
    mode: config.mode,
    options,
    sequences,
    operations,
    applied,
    refused,
    runsMerged,
    runsSharing,
    runsSwappedIn,
    swapOuts,
    swapIns,
    swapInsShared,
    pagedAtFork,
    counters,
    orders: [...orders].sort((x, y) => x - y),
    useful,
    coverage: { checked, missing },
    seconds: (performance.now() - started) / 1000,
  };
}

/** A new part of the plugin for a configuration without a host: its context has no page hash to give. */
function createAlone(kind: CheckedKind, plugin: Plugin<PluginKind, unknown>, config: AloneConfiguration, seed: number, options: Readonly<Record<string, unknown>>): FrameAllocator | EvictionPolicy {
  const context = {
    frames: config.frames,
    numaNodes: config.numaNodes,
    seed,
    hashPage: (): number => {
      throw new Error(`testkit: configuration "${config.name}" has no host: no page hash`);
    },
    baseDir: process.cwd(),
  };
  if (kind === 'allocator') {
    const a = createPart(plugin as Plugin<'allocator', unknown>, plugin.name, options, context);
    if (a.totalFrames !== config.frames) throw new PluginError(plugin.name, `create returned an allocator of ${a.totalFrames} frames for a machine of ${config.frames}`);
    return a;
  }
  return createPart(plugin as Plugin<'eviction-policy', unknown>, plugin.name, options, context);
}

/** Runs the kit of `kind` on `plugin`. */
async function check(kind: CheckedKind, plugin: Plugin<PluginKind, unknown>, opts: KitOptions): Promise<KitReport> {
  const started = performance.now();
  const problems = pluginProblems(plugin, kind);
  const name = typeof (plugin as { name?: unknown })?.name === 'string' ? plugin.name : String(plugin);
  if (problems.length > 0) throw new PluginError(name, `not a ${kind} plugin: ${problems.join('; ')}`);
  const runs = opts.runs ?? DEFAULT_RUNS;
  if (!Number.isSafeInteger(runs) || runs < 1) throw new RangeError(`testkit: runs must be a positive integer, got ${runs}`);
  const seed = opts.seed ?? DEFAULT_SEED;
  if (!Number.isSafeInteger(seed)) throw new RangeError(`testkit: seed must be an integer, got ${seed}`);
  const all = configurationsFor(kind);
  const filter = opts.configurations;
  if (Array.isArray(filter)) {
    const unknown = filter.filter((n) => !all.some((c) => c.name === n));
    if (unknown.length > 0) throw new RangeError(`testkit: no ${kind} configuration ${unknown.map((n) => JSON.stringify(n)).join(', ')}; the configurations are: ${all.map((c) => JSON.stringify(c.name)).join(', ')}`);
  }
  const accept = (n: string): boolean => (filter === undefined ? true : typeof filter === 'function' ? filter(n) : filter.includes(n));
  const chosen = all.map((config, index) => ({ config, index })).filter(({ config }) => accept(config.name));
  if (chosen.length === 0) throw new RangeError(`testkit: the configurations filter leaves none of the ${all.length} ${kind} configurations`);
  const reports: ConfigurationReport[] = [];
  for (const { config, index } of chosen) {
    const options = typeof opts.options === 'function' ? opts.options(config) : (opts.options ?? {});
    reports.push(await runConfiguration(kind, plugin, config, mixSeed(seed, index), options, { runs, seed, shrink: opts.shrink ?? true }));
  }
  return { kind, plugin: plugin.name, seed, runs, configurations: reports, seconds: (performance.now() - started) / 1000 };
}

/**
 * Checks a dedup strategy plugin: in every host configuration ({@link configurationsFor}`('dedup')`)
 * the plugin's part, built with `createPart` (its options checked by its own check), replaces the
 * strategy (one instance per trust group in `'index per group'` configurations), and `runs` random
 * operation sequences go through the reference-model check: every read equals what a `Map` model
 * says was written, every refusal carries an errno the model accepts and changes nothing, the
 * audit (the strategy's own included) is clean after every step, and destroying every domain at
 * the end gives back every frame and swap slot. As the host calls it, `lookup` must return
 * INVALID_MFN or a live frame of the page's content, and no frame may stay contained after
 * `remove`.
 * @returns what ran, per configuration, with whether the strategy merged anything (a strategy that
 *   merges nothing can be correct: the report says so, the kit does not fail it).
 * @throws Error naming the plugin, the configuration, the seed and the failing step with
 *   fast-check's counterexample; PluginError when the plugin refuses its options or `create` throws.
 */
export function checkDedupStrategy(plugin: Plugin<'dedup', unknown>, opts: KitOptions = {}): Promise<KitReport> {
  return check('dedup', plugin as unknown as Plugin<PluginKind, unknown>, opts);
}

/**
 * Checks an eviction policy plugin: alone against a model of its own (the set of frames tracked:
 * `victim()` is tracked, INVALID_MFN only when none is, `size` exact), then in every host
 * configuration with swap (shared and per-domain areas, with and without injected device faults,
 * under inline, none and ksm) through the reference-model check, the policy's promises checked as
 * the host calls it.
 * @throws as {@link checkDedupStrategy}.
 */
export function checkEvictionPolicy(plugin: Plugin<'eviction-policy', unknown>, opts: KitOptions = {}): Promise<KitReport> {
  return check('eviction-policy', plugin as unknown as Plugin<PluginKind, unknown>, opts);
}

/**
 * Checks a frame allocator plugin: alone against a model of its own (random alloc/free sequences:
 * no frame handed out twice, blocks of 2^order contiguous frames within the machine, `freeFrames`
 * exact and `isFree` right after every step, every frame free again at the end), then in every host
 * configuration through the reference-model check.
 * @throws as {@link checkDedupStrategy}.
 */
export function checkAllocator(plugin: Plugin<'allocator', unknown>, opts: KitOptions = {}): Promise<KitReport> {
  return check('allocator', plugin as unknown as Plugin<PluginKind, unknown>, opts);
}
