import { INVALID_MFN, InvariantError, PAGE_SIZE, type Mfn } from '@pagevisor/types';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { machineHost, randomPage } from '../tests/machine-host.js';
import { InlineDedup } from './index.js';

const FRAMES = 12;
/** Content 0 is the zero page, which the zero frame also holds. */
const CONTENTS = [new Uint8Array(PAGE_SIZE), randomPage(1), randomPage(2), randomPage(3), randomPage(4)];

type Op =
  | { kind: 'write'; frame: number; content: number }
  | { kind: 'insert'; frame: number }
  | { kind: 'remove'; frame: number }
  | { kind: 'lookup'; content: number };

const frameArb = fc.nat(FRAMES - 1);
const contentArb = fc.nat(CONTENTS.length - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), frame: frameArb, content: contentArb }),
  fc.record({ kind: fc.constant('insert' as const), frame: frameArb }),
  fc.record({ kind: fc.constant('remove' as const), frame: frameArb }),
  fc.record({ kind: fc.constant('lookup' as const), content: contentArb }),
);

describe('InlineDedup against a Map<content, Set<mfn>> model', () => {
  let h: Awaited<ReturnType<typeof machineHost>>;
  let mfns: Mfn[];

  beforeAll(async () => {
    h = await machineHost(FRAMES + 4);
    mfns = Array.from({ length: FRAMES }, () => h.frameWith(CONTENTS[0]!));
  });

  /**
   * Runs `ops` on a fresh index and the model. `weakHash` replaces the hash of contents 1-4 by one
   * bit of the content number, passed explicitly to insert and lookup, so that 1 and 3 collide,
   * and so do 2 and 4. Content 0 keeps its real hash, under which attach indexed the zero frame.
   */
  function run(ops: Op[], weakHash: boolean): void {
    const { memory, zeroMfn } = h;
    const hashOf = (content: number): number =>
      weakHash && content !== 0 ? content & 1 : memory.hashPage(CONTENTS[content]!);
    for (const mfn of mfns) memory.zeroFrame(mfn);
    const contentOf = new Array<number>(FRAMES).fill(0);
    const model = new Map<number, Set<Mfn>>(CONTENTS.map((_, c) => [c, new Set<Mfn>()]));
    model.get(0)!.add(zeroMfn);
    const indexed = (f: number): boolean => model.get(contentOf[f]!)!.has(mfns[f]!);

    const dedup = new InlineDedup({ initialCapacity: 2 });
    dedup.attach(h.host);
    for (const op of ops) {
      switch (op.kind) {
        case 'write':
          // The hypervisor drops a frame from the index before its content changes.
          model.get(contentOf[op.frame]!)!.delete(mfns[op.frame]!);
          dedup.remove(mfns[op.frame]!);
          memory.write(mfns[op.frame]!, 0, CONTENTS[op.content]!, 0, PAGE_SIZE);
          contentOf[op.frame] = op.content;
          break;
        case 'insert':
          if (indexed(op.frame)) {
            expect(() => dedup.insert(mfns[op.frame]!, hashOf(contentOf[op.frame]!), 'miss')).toThrow(InvariantError);
          } else {
            dedup.insert(mfns[op.frame]!, hashOf(contentOf[op.frame]!), 'miss');
            model.get(contentOf[op.frame]!)!.add(mfns[op.frame]!);
          }
          break;
        case 'remove':
          dedup.remove(mfns[op.frame]!);
          model.get(contentOf[op.frame]!)!.delete(mfns[op.frame]!);
          break;
        case 'lookup': {
          const found = dedup.lookup(CONTENTS[op.content]!.slice(), hashOf(op.content));
          const holders = model.get(op.content)!;
          if (holders.size === 0) expect(found).toBe(INVALID_MFN);
          else expect(holders.has(found)).toBe(true);
          break;
        }
      }
      for (let f = 0; f < FRAMES; f++) expect(dedup.contains(mfns[f]!)).toBe(indexed(f));
      expect(dedup.contains(zeroMfn)).toBe(true);
      let total = 0;
      for (const set of model.values()) total += set.size;
      expect(dedup.size).toBe(total);
    }
    if (!weakHash) expect(dedup.audit()).toEqual([]);
  }

  it('agrees with the model under the real hash', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => run(ops, false)),
      { numRuns: 300, seed: 0x5eed },
    );
  });

  it('agrees with the model when different contents share a hash', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => run(ops, true)),
      { numRuns: 300, seed: 0xc011 },
    );
  });
});
