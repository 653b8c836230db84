export {
  ChunkedMemory,
  DEFAULT_CHUNK_FRAMES,
  MAX_CHUNK_FRAMES,
  MAX_MACHINE_FRAMES,
  type MachineMemoryOptions,
} from './chunked-memory.js';
export { createMachineMemory, type CreateMachineMemoryOptions, type MachineContents } from './create-machine-memory.js';
export { ZERO_PAGE } from './zero-page.js';
export { pageBuffer } from './page-hash.js';
export {
  FingerprintMemory,
  FINGERPRINT_DEFAULT_CHUNK_FRAMES,
  FINGERPRINT_MAX_CHUNK_FRAMES,
  FINGERPRINT_MAX_FRAMES,
  type FingerprintMemoryOptions,
} from './fingerprint-memory.js';
export {
  Fingerprinter,
  setGeneratedPage,
  ZERO_FINGERPRINT_HIGH,
  ZERO_FINGERPRINT_LOW,
} from './fingerprint.js';
