import { describe, expect, it } from 'vitest';
import { FaultPlan, WriteFault } from './fault-plan.js';

describe('FaultPlan', () => {
  it('fails the chosen operation numbers and counts injected faults', () => {
    const plan = new FaultPlan({ failWriteAt: [2], shortWriteAt: [3], failReadAt: [1] });
    expect([plan.nextWrite(), plan.nextWrite(), plan.nextWrite(), plan.nextWrite()]).toEqual([
      WriteFault.none, WriteFault.eio, WriteFault.short, WriteFault.none,
    ]);
    expect([plan.nextReadFails(), plan.nextReadFails()]).toEqual([true, false]);
    expect(plan.injected).toBe(3);
    expect(plan.writesDone).toBe(2);
  });

  it('is full after the given number of successful writes until cleared', () => {
    const plan = new FaultPlan({ fullAfterWrites: 2, failWriteAt: [1] });
    expect(plan.nextWrite()).toBe(WriteFault.eio);
    expect(plan.nextWrite()).toBe(WriteFault.none);
    expect(plan.nextWrite()).toBe(WriteFault.none);
    expect(plan.nextWrite()).toBe(WriteFault.enospc);
    plan.clear();
    expect(plan.nextWrite()).toBe(WriteFault.none);
  });

  it('draws probabilistic faults from its seed: equal seeds, equal fates', () => {
    const fates = (seed: number) => {
      const plan = new FaultPlan({ seed, writeErrorProbability: 0.3, shortWriteProbability: 0.2, readErrorProbability: 0.5 });
      return Array.from({ length: 200 }, (_, i) => (i % 2 ? plan.nextWrite() : Number(plan.nextReadFails())));
    };
    const a = fates(7);
    expect(fates(7)).toEqual(a);
    expect(fates(8)).not.toEqual(a);
    expect(a).toContain(WriteFault.eio);
    expect(a).toContain(WriteFault.short);
    expect(a.filter((f, i) => i % 2 === 1 && f === WriteFault.none).length).toBeGreaterThan(20);
  });

  it('injects nothing after clear()', () => {
    const plan = new FaultPlan({ writeErrorProbability: 1, readErrorProbability: 1, failReadAt: [1] });
    expect(plan.nextWrite()).toBe(WriteFault.eio);
    plan.clear();
    for (let i = 0; i < 50; i++) {
      expect(plan.nextWrite()).toBe(WriteFault.none);
      expect(plan.nextReadFails()).toBe(false);
    }
  });

  it('cuts a short write to between 1 and length-1 bytes', () => {
    const plan = new FaultPlan({ seed: 3 });
    for (let i = 0; i < 100; i++) {
      const n = plan.shortLength(4096);
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThan(4096);
    }
  });
});
