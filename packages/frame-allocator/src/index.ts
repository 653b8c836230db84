export { ArrayFrameTable } from './array-frame-table.js';
export { BuddyAllocator } from './buddy-allocator.js';
export { FreeListAllocator } from './free-list-allocator.js';
export { ALLOCATOR_PLUGINS, buddyAllocatorPlugin, freeListAllocatorPlugin } from './plugins.js';
