import type { DedupIndex } from './dedup.js';
import type { DomId } from './ids.js';
import type { FrameAllocator } from './frame-table.js';
import type { EvictionPolicy, SwapBackend, SwapDevice } from './swap.js';

/** The swappable parts of a host, by plugin kind. */
export interface PluginParts {
  /** A de-duplication strategy. */
  readonly dedup: DedupIndex;
  /** The policy that picks which frame to page out. */
  readonly 'eviction-policy': EvictionPolicy;
  /** A swap area: slots over a device (the built-in is `shared-swap`). */
  readonly 'swap-backend': SwapBackend;
  /** The device a swap area writes to (`memory`, `file`). */
  readonly 'swap-device': SwapDevice;
  /** The machine frame allocator (`buddy`, `freelist`). */
  readonly allocator: FrameAllocator;
}

/** A kind of plugin: which part of the host it builds. */
export type PluginKind = keyof PluginParts;

/** Every plugin kind, in the order the docs list them. */
export const PLUGIN_KINDS: readonly PluginKind[] = Object.freeze(['dedup', 'eviction-policy', 'swap-backend', 'swap-device', 'allocator']);

/** What every part may need of the run and cannot get otherwise. */
export interface PluginContextBase {
  /** Machine frames of the host (an allocator manages exactly these; a policy tracks frames below). */
  readonly frames: number;
  /** NUMA nodes the frames are split into. */
  readonly numaNodes: number;
  /** A seed for this part, derived from the run's: one seed, one run. */
  readonly seed: number;
  /** The machine's page hash (the one the inline index uses). Bound late: call it when storing, not in `create`. */
  readonly hashPage: (page: Uint8Array) => number;
  /** Directory that relative paths in the options are resolved against (the scenario file's). */
  readonly baseDir: string;
}

/** What a swap device or swap backend is built for: one area. */
export interface SwapAreaContext extends PluginContextBase {
  /** Slots the area should have (the scenario's `slots`, or its default). */
  readonly slots: number;
  /** The domain of a per-domain area; undefined for the one shared area. */
  readonly dom: DomId | undefined;
}

/** The context a swap backend gets: its area, whether to de-duplicate slots, and its device. */
export interface SwapBackendContext extends SwapAreaContext {
  /** True for the shared area (identical pages share a slot), false for per-domain areas. */
  readonly dedup: boolean;
  /** Builds the device the scenario names for this area (call once). */
  readonly device: () => SwapDevice;
}

/** The context each plugin kind's `create` gets. */
export interface PluginContexts {
  readonly dedup: PluginContextBase;
  readonly 'eviction-policy': PluginContextBase;
  readonly 'swap-backend': SwapBackendContext;
  readonly 'swap-device': SwapAreaContext;
  readonly allocator: PluginContextBase;
}

/** One problem with a plugin's options: the dotted path of the field and what is wrong. */
export interface PluginOptionIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * Checks a plugin's options: a zod schema (anything with `safeParse`, so the plugin brings its own
 * zod), or a function returning the options to use or throwing. The result is what `create` gets.
 */
export type PluginOptionsCheck<O> =
  | { safeParse(input: unknown): { success: true; data: O } | { success: false; error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> } } }
  | ((options: Readonly<Record<string, unknown>>) => O);

/**
 * A plugin: the default export of an ES module, a plain object. Scenarios, the CLI and the
 * benchmark runner name it by module specifier (a path relative to the scenario, an absolute
 * path, or a package name); the built-ins are plugins of the same shape.
 */
export interface Plugin<K extends PluginKind = PluginKind, O = Readonly<Record<string, unknown>>> {
  /** Which part it builds. */
  readonly kind: K;
  /** Its name in reports (e.g. `"inline"`, `"2q"`). */
  readonly name: string;
  /** Checks the options before `create` (default: any options pass as they are). */
  readonly options?: PluginOptionsCheck<O>;
  /** Builds the part. Throwing is an error that names the plugin; nothing runs then. */
  create(options: O, context: PluginContexts[K]): PluginParts[K];
}

/** Returns `plugin` as it is: a helper for types (`export default definePlugin({ ... })`). */
export function definePlugin<K extends PluginKind, O = Readonly<Record<string, unknown>>>(plugin: Plugin<K, O>): Plugin<K, O> {
  return plugin;
}

/** A plugin that cannot be used: its specifier (or name) and why. */
export class PluginError extends Error {
  /** The specifier the plugin was named by, or its name. */
  readonly specifier: string;
  /** Option problems, when the options were refused. */
  readonly issues: readonly PluginOptionIssue[];

  constructor(specifier: string, reason: string, issues: readonly PluginOptionIssue[] = []) {
    super(`plugin ${specifier}: ${reason}${issues.map((i) => `\n  ${i.path === '' ? '(options)' : i.path}: ${i.message}`).join('')}`);
    this.name = 'PluginError';
    this.specifier = specifier;
    this.issues = issues;
  }
}

/**
 * What is wrong with `value` as a plugin of `kind` (empty when nothing): a plain object with that
 * `kind`, a non-empty string `name`, a `create` function and, if given, an `options` check.
 */
export function pluginProblems(value: unknown, kind?: PluginKind): string[] {
  if (typeof value !== 'object' || value === null) return [`its default export is ${value === null ? 'null' : typeof value}, not a plugin object { kind, name, create }`];
  const p = value as Partial<Record<keyof Plugin, unknown>>;
  const problems: string[] = [];
  if (!(PLUGIN_KINDS as readonly unknown[]).includes(p.kind)) problems.push(`kind is ${JSON.stringify(p.kind)}, not one of ${PLUGIN_KINDS.join(', ')}`);
  else if (kind !== undefined && p.kind !== kind) problems.push(`it is a ${String(p.kind)} plugin, where a ${kind} plugin is wanted`);
  if (typeof p.name !== 'string' || p.name === '') problems.push('name must be a non-empty string');
  if (typeof p.create !== 'function') problems.push('create must be a function (options, context) => part');
  const o = p.options as { safeParse?: unknown } | undefined;
  if (o !== undefined && typeof o !== 'function' && typeof o?.safeParse !== 'function') problems.push('options must be a zod schema (with safeParse) or a function');
  return problems;
}

/**
 * Checks `options` with the plugin's own check and builds its part.
 * @throws PluginError naming `specifier`: options refused (each field named), `create` throwing or
 *   returning nothing.
 */
export function createPart<K extends PluginKind>(plugin: Plugin<K, unknown>, specifier: string, options: Readonly<Record<string, unknown>>, context: PluginContexts[K]): PluginParts[K] {
  let checked: unknown = options;
  const check = plugin.options;
  if (typeof check === 'function') {
    try {
      checked = check(options);
    } catch (e) {
      if (e instanceof PluginError) throw renamed(e, specifier);
      throw new PluginError(specifier, `options refused: ${e instanceof Error ? e.message : String(e)}`);
    }
  } else if (check !== undefined) {
    const result = check.safeParse(options);
    if (!result.success) {
      throw new PluginError(
        specifier,
        'options refused',
        result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
      );
    }
    checked = result.data;
  }
  let part: PluginParts[K];
  try {
    part = plugin.create(checked, context);
  } catch (e) {
    // A PluginError from create is the plugin's own verdict (options it checks late): keep it.
    if (e instanceof PluginError) throw renamed(e, specifier);
    throw new PluginError(specifier, `create threw: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof part !== 'object' || part === null) throw new PluginError(specifier, `create returned ${part === null ? 'null' : typeof part}, not a ${plugin.kind}`);
  return part;
}

/** `e` under the specifier the plugin was named by (a plugin names itself by its own name). */
function renamed(e: PluginError, specifier: string): PluginError {
  if (e.specifier === specifier) return e;
  const reason = e.message.slice(`plugin ${e.specifier}: `.length).split('\n')[0]!;
  return new PluginError(specifier, reason, e.issues);
}
