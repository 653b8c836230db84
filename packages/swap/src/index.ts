export { FaultPlan, WriteFault, type FaultPlanOptions, type WriteFaultValue } from './fault-plan.js';
export { FaultInjectingDevice } from './fault-injecting-device.js';
export { MemorySwapDevice, type MemorySwapDeviceOptions } from './memory-swap-device.js';
export { FileSwapDevice, type FileSwapDeviceOptions, type FsyncPolicy } from './file-swap-device.js';
export { CODEC_BOUND, createPageCodec, type Compression, type PageCodec } from './page-codec.js';
export { SharedSwap, SWAP_CHUNK_BYTES, type SharedSwapOptions } from './shared-swap.js';
export { ClockPolicy, createEvictionPolicy, EVICTION_POLICIES, LruPolicy, RANDOM_POLICY_DEFAULTS, RandomPolicy, type ClockPolicyOptions, type EvictionPolicyName, type EvictionPolicyOptions, type LruPolicyOptions, type RandomPolicyOptions } from './eviction/index.js';
export { EVICTION_POLICY_PLUGINS, fileDevicePlugin, memoryDevicePlugin, sharedSwapPlugin, SWAP_BACKEND_PLUGINS, SWAP_DEVICE_PLUGINS } from './plugins.js';
