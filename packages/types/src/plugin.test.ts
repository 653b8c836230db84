import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createPart, definePlugin, PluginError, pluginProblems, type FrameAllocator, type Mfn, type PluginContextBase } from './index.js';

const context: PluginContextBase = { frames: 8, numaNodes: 1, seed: 1, hashPage: () => 0, baseDir: '/' };
const allocator: FrameAllocator = { name: 'a', totalFrames: 8, freeFrames: 8, alloc: () => 0 as Mfn, free() {}, isFree: () => true };

describe('plugins', () => {
  it('says what is wrong with a value that is not a plugin of the kind wanted', () => {
    expect(pluginProblems(undefined)).toEqual(['its default export is undefined, not a plugin object { kind, name, create }']);
    expect(pluginProblems({ kind: 'cache', name: '', create: 1, options: 2 })).toEqual([
      'kind is "cache", not one of dedup, eviction-policy, swap-backend, swap-device, allocator',
      'name must be a non-empty string',
      'create must be a function (options, context) => part',
      'options must be a zod schema (with safeParse) or a function',
    ]);
    expect(pluginProblems({ kind: 'allocator', name: 'a', create() {} }, 'dedup')).toEqual(['it is a allocator plugin, where a dedup plugin is wanted']);
    expect(pluginProblems(definePlugin({ kind: 'allocator', name: 'a', create: () => allocator }), 'allocator')).toEqual([]);
  });

  it('checks options with a zod schema, naming every bad field, and with a function', () => {
    const schema = definePlugin({ kind: 'allocator', name: 'z', options: z.strictObject({ order: z.int().min(0).default(2) }), create: (o) => ({ ...allocator, name: `z${o.order}` }) });
    expect(createPart(schema, './z.mjs', {}, context).name).toBe('z2');
    let error: unknown;
    try {
      createPart(schema, './z.mjs', { order: -1, colour: 'red' }, context);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PluginError);
    expect((error as PluginError).issues.map((i) => i.path).sort()).toEqual(['', 'order']);
    expect((error as PluginError).message).toMatch(/^plugin \.\/z\.mjs: options refused\n {2}/);
    const fn = definePlugin({ kind: 'allocator', name: 'f', options: () => { throw new Error('no options here'); }, create: () => allocator });
    expect(() => createPart(fn, 'f', { x: 1 }, context)).toThrow('plugin f: options refused: no options here');
  });

  it('names the plugin when create throws or returns nothing', () => {
    const throws = definePlugin({ kind: 'allocator', name: 't', create: () => { throw new RangeError('too big'); } });
    expect(() => createPart(throws, './t.mjs', {}, context)).toThrow('plugin ./t.mjs: create threw: too big');
    const nothing = { kind: 'allocator', name: 'n', create: () => undefined } as never;
    expect(() => createPart(nothing, 'n', {}, context)).toThrow('plugin n: create returned undefined, not a allocator');
  });
});
