import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEDUP_PLUGINS } from '@pagevisor/dedup';
import { ALLOCATOR_PLUGINS } from '@pagevisor/frame-allocator';
import { EVICTION_POLICY_PLUGINS, SWAP_BACKEND_PLUGINS, SWAP_DEVICE_PLUGINS } from '@pagevisor/swap';
import { PluginError, pluginProblems, type Plugin, type PluginKind } from '@pagevisor/types';

/** The built-in plugins of each kind, by name: what a bare name in a scenario means first. */
export const BUILT_IN_PLUGINS: { readonly [K in PluginKind]: readonly Plugin<K>[] } = {
  dedup: DEDUP_PLUGINS,
  'eviction-policy': EVICTION_POLICY_PLUGINS,
  'swap-backend': SWAP_BACKEND_PLUGINS,
  'swap-device': SWAP_DEVICE_PLUGINS,
  allocator: ALLOCATOR_PLUGINS,
};

/** A plugin as a run uses it: the plugin, and where it came from. */
export interface LoadedPlugin<K extends PluginKind = PluginKind> {
  readonly plugin: Plugin<K, unknown>;
  /** What the scenario or the command line named: a built-in's name, or a module specifier. */
  readonly specifier: string;
  /** True for a built-in (named by its name). */
  readonly builtIn: boolean;
}

/**
 * The plugin of `kind` that `specifier` names: a built-in's name (`"ksm"`, `"lru"`, ...), or the
 * default export of the ES module at a path (relative to `baseDir`, or absolute) or of a package
 * (resolved from `baseDir`, as Node resolves an import there).
 * @throws PluginError naming `specifier`: no such built-in and no such module, a module that fails
 *   to load, a default export that is not a plugin or of another kind.
 */
export async function loadPlugin<K extends PluginKind>(kind: K, specifier: string, baseDir: string): Promise<LoadedPlugin<K>> {
  const builtIn = (BUILT_IN_PLUGINS[kind] as readonly Plugin<K>[]).find((p) => p.name === specifier);
  if (builtIn !== undefined) return { plugin: builtIn as Plugin<K, unknown>, specifier, builtIn: true };
  const url = resolveModule(kind, specifier, baseDir);
  let module: { default?: unknown };
  try {
    module = (await import(url)) as { default?: unknown };
  } catch (e) {
    throw new PluginError(specifier, `cannot load ${url}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  const problems = pluginProblems(module.default, kind);
  if (problems.length > 0) throw new PluginError(specifier, problems.join('; '));
  return { plugin: module.default as Plugin<K, unknown>, specifier, builtIn: false };
}

/**
 * `specifier` as a command line means it: a built-in's name or a `file:` URL as it is, a path made
 * absolute from `cwd`, a package name resolved from `cwd` to its entry's URL (a scenario's own
 * specifiers resolve from the scenario file's directory, which may be elsewhere). A package `cwd`
 * cannot import stays a name, for the loader to name in its error.
 */
export function commandLinePlugin(kind: PluginKind, specifier: string, cwd: string): string {
  if (specifier.startsWith('file:') || BUILT_IN_PLUGINS[kind].some((p) => p.name === specifier)) return specifier;
  if (isPath(specifier)) return resolve(cwd, specifier);
  const path = resolvePackage(specifier, cwd);
  return path === undefined ? specifier : pathToFileURL(path).href;
}

/** True when `specifier` is a path (`./x.mjs`, `../x.mjs`, `/abs/x.mjs`) rather than a package name. */
function isPath(specifier: string): boolean {
  return specifier.startsWith('./') || specifier.startsWith('../') || isAbsolute(specifier) || specifier.startsWith('file:');
}

/** The URL of the module `specifier` names, resolved from `baseDir`. */
function resolveModule(kind: PluginKind, specifier: string, baseDir: string): string {
  const names = BUILT_IN_PLUGINS[kind].map((p) => p.name).join(', ');
  if (specifier === '') throw new PluginError('""', `an empty name; built-in ${kind} plugins: ${names}`);
  if (specifier.startsWith('file:')) return specifier;
  if (isPath(specifier)) {
    const path = resolve(baseDir, specifier);
    if (!existsSync(path)) throw new PluginError(specifier, `no file ${path}`);
    return pathToFileURL(path).href;
  }
  const path = resolvePackage(specifier, baseDir);
  if (path === undefined) {
    throw new PluginError(specifier, `not a built-in ${kind} plugin (${names}), and no package ${specifier} is installed where ${baseDir} can import it (a path must start with ./, ../ or /)`);
  }
  return pathToFileURL(path).href;
}

/**
 * The entry file of package `name` as an import from `baseDir` would find it: Node's own
 * resolution, or for an ESM-only package (whose exports have no `require` or `default`) its
 * `exports` `import` entry or `main`, found in the nearest node_modules that has it.
 */
function resolvePackage(name: string, baseDir: string): string | undefined {
  try {
    return createRequire(join(baseDir, 'noop.js')).resolve(name);
  } catch {
    // Not resolvable through require: look for an import-only package below.
  }
  const packageName = packageNameOf(name);
  const pkgDir = packageDirOf(packageName, baseDir);
  if (pkgDir === undefined) return undefined;
  const subpath = name === packageName ? '.' : `.${name.slice(packageName.length)}`;
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { exports?: unknown; main?: string };
  const entry = exportEntry(pkg.exports, subpath) ?? (subpath === '.' ? (pkg.main ?? 'index.js') : subpath);
  return join(pkgDir, entry);
}

/** The package a specifier names: `@scope/name/sub/path` -> `@scope/name`; `name/sub` -> `name`. */
export function packageNameOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** The directory of package `name` in the nearest `node_modules` above `from` that has it (as Node looks), or undefined. */
export function packageDirOf(name: string, from: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The file `exports` maps `subpath` to under the `import` (else `default`) condition. */
function exportEntry(exports: unknown, subpath: string): string | undefined {
  if (typeof exports === 'string') return subpath === '.' ? exports : undefined;
  if (typeof exports !== 'object' || exports === null) return undefined;
  const map = exports as Record<string, unknown>;
  const target = Object.keys(map).some((k) => k.startsWith('.')) ? map[subpath] : subpath === '.' ? map : undefined;
  const pick = (t: unknown): string | undefined => {
    if (typeof t === 'string') return t;
    if (typeof t !== 'object' || t === null) return undefined;
    const c = t as Record<string, unknown>;
    return pick(c['import'] ?? c['default']);
  };
  return pick(target);
}
