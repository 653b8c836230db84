import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILT_IN_PLUGINS, loadPlugin, packageDirOf, packageNameOf } from '@pagevisor/simulator';
import { PluginError } from '@pagevisor/types';
import { UsageError } from './cli-args.js';

/** The built-in strategies: the matrix runs them already, and a plugin may not take their names. */
export const BUILT_IN_STRATEGIES: readonly string[] = ['none', 'inline', 'ksm', 'esx'];

/** The plugin kinds the bench runs beside its built-ins, and the flag that names each. */
export type BenchPluginKind = 'dedup' | 'eviction-policy' | 'allocator';
/** The command-line flag of each kind. */
export const FLAG_OF: Readonly<Record<BenchPluginKind, string>> = { dedup: '--strategy', 'eviction-policy': '--policy', allocator: '--allocator' };

/** A `--strategy` (or `--policy`, `--allocator`) as the result records it. */
export interface StrategyRecord {
  /** The kind of plugin (dedup for `--strategy`). */
  readonly kind: BenchPluginKind;
  /** The plugin's name (its `name`), as the tables show it. */
  readonly name: string;
  /** What `--strategy` said. */
  readonly specifier: string;
  /** True for a built-in's name: already in the matrix, nothing added. */
  readonly builtIn: boolean;
}

/** A `--strategy` naming a built-in: recorded, nothing added. */
export interface BuiltInStrategy extends StrategyRecord {
  readonly builtIn: true;
}

/** A `--strategy` as loaded: a plugin, or a built-in's name. */
export type GivenStrategy = BenchStrategy | BuiltInStrategy;

/** A dedup strategy plugin given with `--strategy`, loaded, ready to be named in scenario files. */
export interface BenchStrategy extends StrategyRecord {
  readonly builtIn: false;
  /** Its name made fit for measurement ids (`dedup-<slug>`): lower case, `[a-z0-9-]`. */
  readonly slug: string;
  /** Directory the specifier was resolved from (the working directory). */
  readonly baseDir: string;
  /**
   * What a scenario file in any directory names it by (the simulator resolves a scenario's
   * specifiers from the file's directory): an absolute path for a module file, the
   * specifier itself for a package (with {@link BenchStrategy.link} beside the file).
   */
  readonly scenarioSpecifier: string;
  /** For a package: link `node_modules/<name>` beside the scenario file to the package's directory. */
  readonly link?: PackageLink;
}

/** A package linked into a scenario file's directory, so that the child resolves it by name. */
export interface PackageLink {
  /** The package's name (`my-dedup`, `@me/dedup`). */
  readonly name: string;
  /** Its directory, as resolved from the working directory. */
  readonly dir: string;
}

/** A plugin name as a measurement id's group part: `My Dedup.v2` -> `my-dedup-v2`. */
export function strategySlug(name: string): string {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug === '' ? 'plugin' : slug;
}

function isPathSpecifier(spec: string): boolean {
  return spec.startsWith('./') || spec.startsWith('../') || isAbsolute(spec);
}

/**
 * How a scenario file anywhere names the plugin that `spec` names from `baseDir`: a path (or a
 * `file:` URL) as an absolute path; a package by its name, with its directory to link beside the
 * file (else, found only through Node's require resolution, the absolute path of its entry).
 */
function scenarioSpecifierOf(spec: string, baseDir: string): { scenarioSpecifier: string; link?: PackageLink } {
  if (spec.startsWith('file:')) return { scenarioSpecifier: fileURLToPath(spec) };
  if (isPathSpecifier(spec)) return { scenarioSpecifier: resolve(baseDir, spec) };
  const name = packageNameOf(spec);
  const found = packageDirOf(name, baseDir);
  if (found !== undefined) return { scenarioSpecifier: spec, link: { name, dir: realpathSync(found) } };
  try {
    return { scenarioSpecifier: createRequire(join(baseDir, 'noop.js')).resolve(spec) };
  } catch {
    return { scenarioSpecifier: spec };
  }
}

/**
 * Loads each `--strategy` (in the order given) with the simulator's `loadPlugin('dedup', spec, baseDir)`, before
 * anything runs. A built-in's name is recorded and adds nothing (the matrix runs every built-in);
 * the same plugin named twice counts once.
 * @throws UsageError naming the specifier and the reason: the plugin cannot be loaded, is not a
 *   dedup plugin, or its name is a built-in's or another plugin's (measurement ids would collide).
 */
export async function loadStrategies(specs: readonly string[], baseDir: string = process.cwd(), kind: BenchPluginKind = 'dedup'): Promise<GivenStrategy[]> {
  const flag = FLAG_OF[kind];
  const builtIns = BUILT_IN_PLUGINS[kind].map((p) => p.name);
  const strategies: BenchStrategy[] = [];
  const given: GivenStrategy[] = [];
  for (const specifier of specs) {
    let loaded;
    try {
      loaded = await loadPlugin(kind, specifier, baseDir);
    } catch (e) {
      // PluginError's message names the specifier: "plugin ./x.mjs: no file /abs/x.mjs".
      throw new UsageError(e instanceof PluginError ? `${flag}: ${e.message}` : `${flag} ${specifier}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const name = loaded.plugin.name;
    if (loaded.builtIn) {
      if (!given.some((r) => r.builtIn && r.name === name)) given.push({ kind, name, specifier, builtIn: true });
      continue;
    }
    const { scenarioSpecifier, link } = scenarioSpecifierOf(specifier, baseDir);
    if (strategies.some((s) => s.scenarioSpecifier === scenarioSpecifier && s.name === name)) continue;
    const slug = strategySlug(name);
    if (builtIns.includes(slug)) {
      throw new UsageError(`${flag} ${specifier}: the plugin is named "${name}", like the built-in ${slug}: give it a name of its own (its figures would be taken for the built-in's)`);
    }
    const clash = strategies.find((s) => s.slug === slug);
    if (clash !== undefined) {
      throw new UsageError(`${flag} ${specifier}: the plugin is named "${name}" and ${flag} ${clash.specifier} "${clash.name}": both would be measured under ${slug}; give each a name of its own`);
    }
    const strategy: BenchStrategy = { kind, name, specifier, builtIn: false, slug, baseDir, scenarioSpecifier, ...(link === undefined ? {} : { link }) };
    strategies.push(strategy);
    given.push(strategy);
  }
  return given;
}

/** The plugins among `given` (what the macro suite runs). */
export function pluginsOf(given: readonly GivenStrategy[]): BenchStrategy[] {
  return given.filter((s): s is BenchStrategy => !s.builtIn);
}
