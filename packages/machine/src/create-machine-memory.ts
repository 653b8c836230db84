import xxhash from 'xxhash-wasm';
import { ChunkedMemory, type Hash32, type MachineMemoryOptions } from './chunked-memory.js';

let hasher: Promise<Hash32> | undefined;

/** xxhash-wasm instantiates its WebAssembly module asynchronously; one instance serves every machine. */
function h32Raw(): Promise<Hash32> {
  hasher ??= xxhash().then(
    (api) => api.h32Raw,
    (err: unknown) => {
      // Let a later call retry instead of caching the failure.
      hasher = undefined;
      throw err;
    },
  );
  return hasher;
}

/**
 * Creates a machine's RAM of `opts.frames` frames in lazily allocated chunks of
 * `opts.chunkFrames` frames (default 65536 = 256 MiB), hashing with xxhash-wasm's 32-bit `h32Raw`.
 * Async because xxhash-wasm initialises asynchronously.
 */
export async function createMachineMemory(opts: MachineMemoryOptions): Promise<ChunkedMemory> {
  return new ChunkedMemory(opts, await h32Raw());
}
