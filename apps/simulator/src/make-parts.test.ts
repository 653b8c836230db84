import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PluginError } from '@pagevisor/types';
import { parseScenario } from '@pagevisor/workloads';
import { makeAllocator, makeDedup, type PartsContext } from './make-parts.js';

function dedupOf(dedup: Record<string, unknown>) {
  return parseScenario({ name: 'd', machine: { memoryMiB: 1 }, guests: [{ name: 'g', memoryMiB: 1 }], dedup }).dedup;
}

const context = (seed = 1, baseDir = process.cwd()): PartsContext => ({ frames: 256, numaNodes: 1, seed, hashPage: () => 0, baseDir });

async function refusal(run: () => Promise<unknown>): Promise<PluginError> {
  try {
    await run();
  } catch (e) {
    expect(e).toBeInstanceOf(PluginError);
    return e as PluginError;
  }
  throw new Error('expected a PluginError');
}

describe('makeDedup', () => {
  it('builds the built-in strategy named, with its options', async () => {
    expect((await makeDedup(dedupOf({}), context())).part.name).toBe('inline');
    const none = await makeDedup(dedupOf({ strategy: 'none' }), context());
    expect([none.part.name, none.loaded.builtIn, none.loaded.plugin.name]).toEqual(['none', true, 'none']);
    expect((await makeDedup(dedupOf({ strategy: 'inline', initialCapacity: 64 }), context())).part.stats()['capacity']).toBe(64);
  });

  it('refuses what the strategy refuses, naming the plugin and the option', async () => {
    expect((await refusal(() => makeDedup(dedupOf({ strategy: 'inline', initialCapacity: 3 }), context()))).message).toMatch(/^plugin inline: options refused: initialCapacity must be a power of two/);
    expect((await refusal(() => makeDedup(dedupOf({ strategy: 'inline', colour: 1 }), context()))).message).toMatch(/^plugin inline: options refused: inline has no option "colour"/);
    expect((await refusal(() => makeDedup(dedupOf({ strategy: 'none', initialCapacity: 64 }), context()))).message).toMatch(/^plugin none: options refused: none has no option "initialCapacity"/);
  });

  it("seeds ESX's random scan from the run's seed unless the options name one", async () => {
    const knobs = async (seed: number, options: Record<string, unknown> = {}) => (await makeDedup(dedupOf({ strategy: 'esx', ...options }), context(seed))).part;
    // Different scenario seeds give different scan orders; an explicit seed wins over both.
    expect(await knobs(1)).not.toEqual(await knobs(2));
    expect(await knobs(1, { seed: 9 })).toEqual(await knobs(2, { seed: 9 }));
  });

  it('loads a plugin by path relative to the base directory, and names a bad one with the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pagevisor-plugin-'));
    writeFileSync(
      join(dir, 'zero.mjs'),
      // Self-contained: a temporary directory has no node_modules to import @pagevisor/* from.
      `const none = { name: 'nothing', inline: false, populateZero: false, size: 0, attach() {}, lookup: () => -1, insert() {}, remove() {},
  contains: () => false, metadataBytes: () => 0, stats: () => ({}), audit: () => [] };
export default { kind: 'dedup', name: 'zero-only', options: (o) => { if (o.bad) throw new Error('bad is not an option'); return o; }, create: () => none };`,
    );
    writeFileSync(join(dir, 'policy.mjs'), `export default { kind: 'eviction-policy', name: 'p', create: () => ({}) };`);
    writeFileSync(join(dir, 'throws.mjs'), `export default { kind: 'dedup', name: 't', create: () => { throw new Error('no room'); } };`);
    writeFileSync(join(dir, 'syntax.mjs'), `export default {`);
    writeFileSync(join(dir, 'none.mjs'), `export const x = 1;`);
    const built = await makeDedup(dedupOf({ strategy: './zero.mjs' }), context(1, dir));
    expect([built.loaded.plugin.name, built.loaded.builtIn, built.loaded.specifier]).toEqual(['zero-only', false, './zero.mjs']);
    const message = async (strategy: string, extra: Record<string, unknown> = {}) => (await refusal(() => makeDedup(dedupOf({ strategy, ...extra }), context(1, dir)))).message;
    expect(await message('./zero.mjs', { bad: true })).toBe('plugin ./zero.mjs: options refused: bad is not an option');
    expect(await message('./policy.mjs')).toBe('plugin ./policy.mjs: it is a eviction-policy plugin, where a dedup plugin is wanted');
    expect(await message('./throws.mjs')).toBe('plugin ./throws.mjs: create threw: no room');
    expect(await message('./syntax.mjs')).toMatch(/^plugin \.\/syntax\.mjs: cannot load file:.*syntax\.mjs: /);
    expect(await message('./none.mjs')).toBe('plugin ./none.mjs: its default export is undefined, not a plugin object { kind, name, create }');
    expect(await message('./missing.mjs')).toBe(`plugin ./missing.mjs: no file ${join(dir, 'missing.mjs')}`);
    expect(await message('bogus')).toMatch(/^plugin bogus: not a built-in dedup plugin \(inline, ksm, esx, none\), and no package bogus is installed/);
  });
});

describe('makeAllocator', () => {
  it('builds buddy and freelist for the run, and refuses options they do not take', async () => {
    expect((await makeAllocator('buddy', context())).part.totalFrames).toBe(256);
    expect((await makeAllocator({ plugin: 'freelist' }, context())).part.name).toMatch(/free/);
    expect((await refusal(() => makeAllocator({ plugin: 'buddy', order: 3 }, context()))).message).toBe('plugin buddy: options refused\n  order: the buddy allocator takes no options');
  });
});
