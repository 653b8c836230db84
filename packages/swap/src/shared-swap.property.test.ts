import { createMachineMemory } from '@pagevisor/machine';
import { HypervisorError, PAGE_SIZE, Prng, type SwapSlot } from '@pagevisor/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FaultPlan } from './fault-plan.js';
import { MemorySwapDevice } from './memory-swap-device.js';
import type { Compression } from './page-codec.js';
import { SharedSwap } from './shared-swap.js';

const memory = await createMachineMemory({ frames: 4 });

/** A small set of contents, so identical pages recur; content 0 is all zeros, odd ones compress. */
function content(id: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  if (id === 0) return p;
  const prng = new Prng(id);
  if (id % 2 === 1) for (let i = 0; i < PAGE_SIZE; i += 64) p[i] = prng.nextU32() & 0xff;
  else prng.fillBytes(p);
  return p;
}
const CONTENTS = Array.from({ length: 6 }, (_, i) => content(i));

type Op =
  | { kind: 'store'; content: number }
  | { kind: 'load'; pick: number }
  | { kind: 'ref'; pick: number; delta: number }
  | { kind: 'clear' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('store' as const), content: fc.nat(CONTENTS.length - 1) }),
  fc.record({ kind: fc.constant('load' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('ref' as const), pick: fc.nat(), delta: fc.integer({ min: -2, max: 2 }) }),
  fc.constant({ kind: 'clear' as const }),
);

describe('SharedSwap against a Map model', () => {
  it('every successful load returns the stored bytes; failures change nothing; audit is clean after every step', () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 60 }),
        fc.integer({ min: 1, max: 0xffff }),
        fc.constantFrom<Compression>('none', 'lz4', 'deflate'),
        fc.boolean(),
        fc.boolean(),
        (ops, seed, compression, dedup, weakHash) => {
          const faults = new FaultPlan({
            seed,
            writeErrorProbability: 0.15,
            shortWriteProbability: 0.15,
            readErrorProbability: 0.15,
            fullAfterWrites: 12,
          });
          const swap = new SharedSwap({
            device: new MemorySwapDevice({ slots: 3, faults }),
            slots: 6,
            hashPage: weakHash ? (p) => p[0]! & 1 : (p) => memory.hashPage(p),
            dedup,
            compression,
          });
          const hash = weakHash ? (p: Uint8Array) => p[0]! & 1 : (p: Uint8Array) => memory.hashPage(p);
          // Model: slot → [content id, refcount].
          const model = new Map<SwapSlot, { content: number; refs: number }>();
          const out = new Uint8Array(PAGE_SIZE);
          for (const o of ops) {
            const slots = [...model.keys()];
            if (o.kind === 'store') {
              const page = CONTENTS[o.content]!;
              try {
                const s = swap.store(page, hash(page));
                const m = model.get(s);
                if (m) {
                  expect(dedup).toBe(true);
                  expect(m.content).toBe(o.content);
                  m.refs++;
                } else model.set(s, { content: o.content, refs: 1 });
              } catch (e) {
                expect(e).toBeInstanceOf(HypervisorError);
                expect(['EIO', 'ENOSPC']).toContain((e as HypervisorError).errnoName);
              }
            } else if (o.kind === 'load' && slots.length > 0) {
              const s = slots[o.pick % slots.length]!;
              out.fill(0xee);
              try {
                swap.load(s, out);
                expect(out).toEqual(CONTENTS[model.get(s)!.content]);
              } catch (e) {
                expect((e as HypervisorError).errnoName).toBe('EIO');
                expect(out.every((b) => b === 0xee)).toBe(true);
              }
            } else if (o.kind === 'ref' && slots.length > 0) {
              const s = slots[o.pick % slots.length]!;
              const m = model.get(s)!;
              if (m.refs + o.delta < 0) {
                expect(() => swap.addRef(s, o.delta)).toThrow(HypervisorError);
              } else {
                m.refs += o.delta;
                expect(swap.addRef(s, o.delta)).toBe(m.refs);
                if (m.refs === 0) model.delete(s);
              }
            } else if (o.kind === 'clear') {
              faults.clear();
            }
            expect(swap.audit()).toEqual([]);
            expect([...swap.usedSlots()]).toEqual([...model.keys()].sort((a, b) => a - b));
            for (const [s, m] of model) expect(swap.refcount(s)).toBe(m.refs);
            expect(swap.stats().swapSlotsUsed).toBe(model.size);
          }
          // Once the faults clear, every page reads back.
          faults.clear();
          for (const [s, m] of model) {
            swap.load(s, out);
            expect(out).toEqual(CONTENTS[m.content]);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
