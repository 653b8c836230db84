import { describe, expect, it } from 'vitest';
import { ChunkedMemory } from './chunked-memory.js';
import { createMachineMemory, type MachineContents } from './create-machine-memory.js';
import { FingerprintMemory } from './fingerprint-memory.js';

describe('createMachineMemory', () => {
  it('gives bytes by default and with contents "bytes", fingerprints with contents "fingerprints", each saying what it holds', async () => {
    const plain = await createMachineMemory({ frames: 8 });
    const bytes = await createMachineMemory({ frames: 8, contents: 'bytes' });
    const fingerprints = await createMachineMemory({ frames: 8, chunkFrames: 4, contents: 'fingerprints' });
    expect(plain).toBeInstanceOf(ChunkedMemory);
    expect(bytes).toBeInstanceOf(ChunkedMemory);
    expect(fingerprints).toBeInstanceOf(FingerprintMemory);
    expect([plain.contents, bytes.contents, fingerprints.contents]).toEqual(['bytes', 'bytes', 'fingerprints']);
    expect([fingerprints.frames, fingerprints.chunkFrames]).toEqual([8, 4]);
    // A mode known only at run time gives the union.
    const mode = 'fingerprints' as MachineContents;
    expect((await createMachineMemory({ frames: 2, contents: mode })).contents).toBe('fingerprints');
  });

  it('refuses an unknown mode, and each kind its own sizes', async () => {
    await expect(createMachineMemory({ frames: 8, contents: 'pages' as MachineContents })).rejects.toThrow(/"bytes" or "fingerprints", got "pages"/);
    await expect(createMachineMemory({ frames: 0, contents: 'fingerprints' })).rejects.toThrow(RangeError);
    await expect(createMachineMemory({ frames: 2 ** 30 + 1, contents: 'fingerprints' })).rejects.toThrow(RangeError);
  });
});
