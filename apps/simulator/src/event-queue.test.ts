import { describe, expect, it } from 'vitest';
import { InvariantError, Prng } from '@pagevisor/types';
import { EventQueue } from './event-queue.js';

describe('EventQueue', () => {
  it('pops by time, ties by index', () => {
    const q = new EventQueue(5);
    q.push(3, 10);
    q.push(1, 10);
    q.push(4, 5);
    q.push(0, 20);
    q.push(2, 10);
    expect(q.peekTimeNs()).toBe(5);
    const order = [];
    while (q.size > 0) order.push(q.pop());
    expect(order).toEqual([4, 1, 2, 3, 0]);
    expect(q.peekTimeNs()).toBe(Infinity);
  });

  it('agrees with sorting on random pushes and re-pushes', () => {
    const prng = new Prng(5);
    const n = 200;
    const q = new EventQueue(n);
    const time = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const t = prng.nextInt(50);
      time.set(i, t);
      q.push(i, t);
    }
    let lastT = -1;
    let lastI = -1;
    for (let step = 0; step < 2000; step++) {
      const t = q.peekTimeNs();
      const i = q.pop();
      expect(time.get(i)).toBe(t);
      expect(t > lastT || (t === lastT && i > lastI)).toBe(true);
      lastT = t;
      lastI = i;
      const next = t + 1 + prng.nextInt(30);
      time.set(i, next);
      q.push(i, next);
    }
  });

  it('refuses an infinite time, an overfull queue and popping an empty one', () => {
    const q = new EventQueue(1);
    expect(() => q.push(0, Infinity)).toThrow(InvariantError);
    q.push(0, 1);
    expect(() => q.push(0, 2)).toThrow(InvariantError);
    q.pop();
    expect(() => q.pop()).toThrow(InvariantError);
  });
});
