import { ChunkedMemory, type MachineMemoryOptions } from './chunked-memory.js';
import { FingerprintMemory } from './fingerprint-memory.js';

/** What each frame of a machine holds: its 4 KiB of bytes, or a 64-bit fingerprint of them. */
export type MachineContents = 'bytes' | 'fingerprints';

/** Options of {@link createMachineMemory}: the size of the machine and what its frames hold. */
export interface CreateMachineMemoryOptions extends MachineMemoryOptions {
  /**
   * `'bytes'` (default): a {@link ChunkedMemory}, every frame's bytes. `'fingerprints'`: a
   * {@link FingerprintMemory}, a 64-bit content fingerprint a frame (8 bytes instead of 4 KiB;
   * its own limits on `frames` and `chunkFrames`).
   */
  contents?: MachineContents;
}

/**
 * Creates a machine's RAM of `opts.frames` frames in lazily allocated chunks of
 * `opts.chunkFrames` frames (default 65536 = 256 MiB of RAM): a {@link ChunkedMemory} (hashing
 * pages with XXH64 in place), or with `contents: 'fingerprints'` a {@link FingerprintMemory}.
 * It resolves at once (the hash's WebAssembly module compiles synchronously); it stays a Promise
 * so that callers do not change when a kind of memory needs asynchronous setup.
 * @throws RangeError for a size the kind of memory does not take, or an unknown `contents`.
 */
export async function createMachineMemory(opts: MachineMemoryOptions & { contents: 'bytes' }): Promise<ChunkedMemory>;
export async function createMachineMemory(opts: MachineMemoryOptions & { contents: 'fingerprints' }): Promise<FingerprintMemory>;
export async function createMachineMemory(opts: MachineMemoryOptions & { contents: MachineContents }): Promise<ChunkedMemory | FingerprintMemory>;
// Last, so that ReturnType<typeof createMachineMemory> stays ChunkedMemory, as before.
export async function createMachineMemory(opts: MachineMemoryOptions & { contents?: 'bytes' }): Promise<ChunkedMemory>;
export async function createMachineMemory(opts: CreateMachineMemoryOptions): Promise<ChunkedMemory | FingerprintMemory> {
  const { contents = 'bytes', ...size } = opts;
  if (contents === 'bytes') return new ChunkedMemory(size);
  if (contents === 'fingerprints') return new FingerprintMemory(size);
  throw new RangeError(`machine contents must be "bytes" or "fingerprints", got ${JSON.stringify(contents)}`);
}
