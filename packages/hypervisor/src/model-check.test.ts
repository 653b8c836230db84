import fc from 'fast-check';
import { describe, it } from 'vitest';
import { createDedup } from '@pagevisor/dedup';
import { PAGE_SIZE, Prng } from '@pagevisor/types';
import { Hypervisor } from './hypervisor.js';
import { checkAgainstModel, type ModelOp } from './model-check.js';

/** Runs per configuration; `MODEL_CHECK_RUNS` raises it for long runs (npm run check:model). */
const RUNS = Number(process.env['MODEL_CHECK_RUNS'] ?? 60);
const SEED = process.env['MODEL_CHECK_SEED'] === undefined ? undefined : Number(process.env['MODEL_CHECK_SEED']);

// A small pool of contents, so whole-page writes often repeat and share. Pool entry 0 is zeros.
const POOL = Array.from({ length: 6 }, (_, i) => {
  const page = new Uint8Array(PAGE_SIZE);
  if (i > 0) new Prng(i).fillBytes(page);
  return page;
});
const page = (i: number): Uint8Array => POOL[i % POOL.length]!;

const dom = fc.integer({ min: 1, max: 4 }); // sometimes names a domain that does not exist
const gfn = fc.integer({ min: 0, max: 17 }); // sometimes out of range of a 16-page domain
const opArb: fc.Arbitrary<ModelOp> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('create' as const), maxPages: fc.integer({ min: 4, max: 16 }), gfnCount: fc.constant(16) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('populate' as const), dom, gfns: fc.uniqueArray(gfn, { maxLength: 4 }), order: fc.integer({ min: 0, max: 2 }), pod: fc.boolean() }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('writePage' as const), dom, gfn, content: fc.integer({ min: 0, max: POOL.length - 1 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('writeBytes' as const), dom, gfn, offset: fc.integer({ min: 0, max: PAGE_SIZE - 8 }), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('read' as const), dom, gfn }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('decrease' as const), dom, gfns: fc.uniqueArray(gfn, { maxLength: 3 }), order: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('share' as const), a: dom, gfnA: gfn, b: dom, gfnB: gfn }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('destroy' as const), dom }) },
);
// Start with a few domains so most ops land somewhere.
const opsArb = fc
  .array(opArb, { minLength: 20, maxLength: 120 })
  .map((ops): ModelOp[] => [
    { kind: 'create', maxPages: 16, gfnCount: 16 },
    { kind: 'create', maxPages: 12, gfnCount: 16 },
    { kind: 'create', maxPages: 16, gfnCount: 16 },
    ...ops,
  ]);

describe.each([
  { strategy: 'inline' as const, allocator: 'buddy' as const, frames: 40 },
  { strategy: 'inline' as const, allocator: 'freelist' as const, frames: 24 },
  { strategy: 'none' as const, allocator: 'buddy' as const, frames: 30 },
])('reference model: dedup $strategy, allocator $allocator, $frames frames', ({ strategy, allocator, frames }) => {
  it('every read equals what was last written and the audit stays clean', async () => {
    await fc.assert(
      fc.asyncProperty(opsArb, async (ops) => {
        const hv = await Hypervisor.create({ frames, allocator, dedup: createDedup(strategy) });
        checkAgainstModel(hv, ops, { page });
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});
