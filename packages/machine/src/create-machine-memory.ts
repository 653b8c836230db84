import { ChunkedMemory, type MachineMemoryOptions } from './chunked-memory.js';

/**
 * Creates a machine's RAM of `opts.frames` frames in lazily allocated chunks of
 * `opts.chunkFrames` frames (default 65536 = 256 MiB), hashing pages with XXH64 in place.
 * It resolves at once (the hash's WebAssembly module compiles synchronously); it stays a Promise
 * so that callers do not change when a kind of memory needs asynchronous setup.
 */
export async function createMachineMemory(opts: MachineMemoryOptions): Promise<ChunkedMemory> {
  return new ChunkedMemory(opts);
}
