import { definePlugin, PluginError, type FrameAllocator, type Plugin } from '@pagevisor/types';
import { BuddyAllocator } from './buddy-allocator.js';
import { FreeListAllocator } from './free-list-allocator.js';

/** An allocator plugin that takes no options. */
function allocatorPlugin(name: string, make: (frames: number) => FrameAllocator): Plugin<'allocator'> {
  return definePlugin({
    kind: 'allocator',
    name,
    options: (o) => {
      const unknown = Object.keys(o);
      if (unknown.length > 0) throw new PluginError(name, 'options refused', unknown.map((path) => ({ path, message: `the ${name} allocator takes no options` })));
      return o;
    },
    create: (_options, context) => make(context.frames),
  });
}

/** The buddy allocator (Xen's page_alloc) as a plugin: `"allocator": "buddy"`. */
export const buddyAllocatorPlugin = allocatorPlugin('buddy', (frames) => new BuddyAllocator(frames));
/** The free-list allocator as a plugin: `"allocator": "freelist"`. */
export const freeListAllocatorPlugin = allocatorPlugin('freelist', (frames) => new FreeListAllocator(frames));

/** The built-in allocator plugins. */
export const ALLOCATOR_PLUGINS: readonly Plugin<'allocator'>[] = Object.freeze([buddyAllocatorPlugin, freeListAllocatorPlugin]);
