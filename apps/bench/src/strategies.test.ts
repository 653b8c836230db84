import { copyFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { testProject } from '../tests/test-project.js';
import { UsageError } from './cli-args.js';
import { main } from './cli.js';
import { packageNameOf } from '@pagevisor/simulator';
import { loadStrategies, pluginsOf, strategySlug, type BenchStrategy } from './strategies.js';

const project = testProject();
afterAll(() => project.remove());

async function refusal(specs: string[]): Promise<string> {
  try {
    await loadStrategies(specs, project.dir);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('loadStrategies', () => {
  it('loads a module path relative to the base directory, named for scenario files by its absolute path', async () => {
    const [s] = await loadStrategies(['./hash-map.mjs'], project.dir);
    expect(s).toEqual({
      kind: 'dedup',
      name: 'my-hash-map',
      specifier: './hash-map.mjs',
      builtIn: false,
      slug: 'my-hash-map',
      baseDir: project.dir,
      scenarioSpecifier: join(project.dir, 'hash-map.mjs'),
    });
  });

  it('loads an absolute path and an ESM-only package, which scenario files name by its name with a link to it', async () => {
    const given = await loadStrategies([join(project.dir, 'hash-map.mjs'), '@me/nothing-shared'], project.dir);
    expect(given.map((s) => [s.name, s.builtIn])).toEqual([
      ['my-hash-map', false],
      ['nothing-shared', false],
    ]);
    const pkg = given[1] as BenchStrategy;
    expect(pkg.scenarioSpecifier).toBe('@me/nothing-shared');
    expect(pkg.link).toEqual({ name: '@me/nothing-shared', dir: realpathSync(join(project.dir, 'node_modules', '@me', 'nothing-shared')) });
  });

  it('records a built-in name without adding it, and counts one plugin named twice once', async () => {
    const given = await loadStrategies(['ksm', './hash-map.mjs', join(project.dir, 'hash-map.mjs'), pathToFileURL(join(project.dir, 'hash-map.mjs')).href, 'ksm'], project.dir);
    expect(given.map((s) => [s.name, s.specifier, s.builtIn])).toEqual([
      ['ksm', 'ksm', true],
      ['my-hash-map', './hash-map.mjs', false],
    ]);
    expect(pluginsOf(given).map((s) => s.name)).toEqual(['my-hash-map']);
  });

  it('refuses a missing file, a plugin of another kind, an unknown package, and names that collide, naming the specifier', async () => {
    expect(await refusal(['./missing.mjs'])).toBe(`--strategy: plugin ./missing.mjs: no file ${join(project.dir, 'missing.mjs')}`);
    expect(await refusal(['./policy.mjs'])).toBe('--strategy: plugin ./policy.mjs: it is a eviction-policy plugin, where a dedup plugin is wanted');
    expect(await refusal(['no-such-strategy'])).toMatch(/^--strategy: plugin no-such-strategy: not a built-in dedup plugin \(inline, ksm, esx, none\), and no package no-such-strategy is installed/);
    expect(await refusal(['./inline.mjs'])).toMatch(/^--strategy \.\/inline\.mjs: the plugin is named "inline", like the built-in inline/);
    copyFileSync(join(project.dir, 'hash-map.mjs'), join(project.dir, 'hash-map-copy.mjs'));
    expect(await refusal(['./hash-map.mjs', './hash-map-copy.mjs'])).toBe(
      '--strategy ./hash-map-copy.mjs: the plugin is named "my-hash-map" and --strategy ./hash-map.mjs "my-hash-map": both would be measured under my-hash-map; give each a name of its own',
    );
  });
});

describe('strategy names', () => {
  it('makes a name fit for measurement ids', () => {
    expect(strategySlug('My Dedup.v2')).toBe('my-dedup-v2');
    expect(strategySlug('2q')).toBe('2q');
    expect(strategySlug('***')).toBe('plugin');
  });

  it('takes the package of a specifier with a subpath', () => {
    expect(packageNameOf('@me/dedup/fast')).toBe('@me/dedup');
    expect(packageNameOf('dedup/fast')).toBe('dedup');
    expect(packageNameOf('dedup')).toBe('dedup');
  });
});

describe('main with --strategy', () => {
  it('exits 1 before anything runs when a strategy cannot be loaded, naming it', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) } };
    expect(await main(['--suite', 'macro', '--strategy', './hash-map.mjs', '--strategy', './gone.mjs'], io, project.dir)).toBe(1);
    expect(err.join('')).toMatch(new RegExp(`^bench: --strategy: plugin \\./gone\\.mjs: no file ${join(project.dir, 'gone.mjs').replace(/[.]/g, '\\.')}\\n\\nUsage: `));
    expect(out).toEqual([]);
  });
});
