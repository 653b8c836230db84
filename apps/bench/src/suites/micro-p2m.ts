import { ArrayP2m } from '@pagevisor/p2m';
import { asDomId, asGfn, asMfn, P2mType } from '@pagevisor/types';
import { measurement, type Measurement } from '../measurement.js';
import { timeRates } from '../measure.js';
import type { SuiteContext } from '../suite-context.js';

/**
 * p2m get (machine frame and type of a gfn) and set (a ram_rw entry), sequential gfns over one
 * domain's table; set alternates between two frames so that every call changes the entry.
 */
export function benchP2m(ctx: SuiteContext): { measurements: Measurement[]; notes: string[] } {
  const size = ctx.quick ? 4096 : 262144;
  ctx.log('micro: p2m');
  const p2m = new ArrayP2m(2 * size);
  const table = p2m.createTable(asDomId(1), size);
  for (let g = 0; g < size; g++) table.set(asGfn(g), asMfn(g), P2mType.ram_rw);
  let flip = 0;
  const set = timeRates({
    ops: size,
    repeats: ctx.repeats,
    run: (n) => {
      const base = (flip ^= 1) * size;
      for (let i = 0; i < n; i++) table.set(asGfn(i % size), asMfn(base + (i % size)), P2mType.ram_rw);
    },
  });
  let sink = 0;
  const get = timeRates({
    ops: size,
    repeats: ctx.repeats,
    run: (n) => {
      // A local small-integer sum: a closure variable growing past 2^31 would box a number per op.
      let s = 0;
      for (let i = 0; i < n; i++) {
        const g = asGfn(i % size);
        s = (s + table.mfn(g) + table.type(g)) | 0;
      }
      sink ^= s;
    },
  });
  if (sink === 0.5) ctx.log('unreachable'); // keeps the loop's result alive
  const m = (key: string, name: string, samples: number[]): Measurement =>
    measurement({ suite: 'micro', group: 'p2m', key, name, unit: 'ops/s', better: 'higher', samples });
  return {
    measurements: [m('get', 'p2m get (mfn + type)', get), m('set', 'p2m set (ram_rw)', set)],
    notes: [`p2m: one table of ${size} gfns, sequential access.`],
  };
}
