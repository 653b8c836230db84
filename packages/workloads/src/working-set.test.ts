import { describe, expect, it } from 'vitest';
import { asDomId, HypervisorError, NS_PER_S, type DomId, type Gfn } from '@pagevisor/types';
import { FakeHost } from '../tests/fake-host.js';
import { SyntheticGuest, type SyntheticGuestSpec } from './synthetic-guest.js';

const base: SyntheticGuestSpec = {
  memoryMiB: 1, // 256 pages
  image: { id: 'os', fraction: 0.5 },
  zeroFraction: 0,
  writeRatePagesPerS: 100,
  writeBytes: 16,
  wholePageWriteFraction: 0,
  bootPagesPerS: 1024,
};

/** Logs reads too, and can refuse the n-th steady-state access with an errno. */
class RecordingHost extends FakeHost {
  readonly reads: { gfn: number; t: number }[] = [];
  failures: string[] = [];
  accesses = 0;
  steady = false;

  override readPage(dom: DomId, gfn: Gfn, offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    this.maybeFail('read');
    super.readPage(dom, gfn, offset, dst, dstOffset, length);
    this.log.push(`read ${dom} ${gfn} ${offset} ${length}`);
  }

  override writePage(dom: DomId, gfn: Gfn, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    this.maybeFail('write');
    super.writePage(dom, gfn, offset, src, srcOffset, length);
  }

  private maybeFail(op: string): void {
    if (!this.steady) return;
    const errno = this.failures.shift();
    if (errno !== undefined && errno !== '') throw new HypervisorError(errno as 'EIO', op, `injected ${errno}`);
  }
}

function run(guest: SyntheticGuest, host?: RecordingHost): number[] {
  const times: number[] = [];
  for (let t = guest.nextEventNs(); t !== Infinity; t = guest.nextEventNs()) {
    if (host !== undefined && guest.state === 'running') host.steady = true;
    times.push(t);
    guest.step(t);
  }
  return times;
}

describe('SyntheticGuest reads and working sets', () => {
  it('reads readRatePagesPerS pages (64 bytes each) beside its writes', () => {
    const host = new RecordingHost();
    const guest = new SyntheticGuest({ ...base, readRatePagesPerS: 300 }, asDomId(1), 5, { memory: host, hypercalls: host }, { durationNs: 2 * NS_PER_S });
    run(guest);
    expect(guest.state).toBe('done');
    expect(guest.readsPlanned).toBe(600);
    expect(guest.readsDone).toBe(600);
    expect(guest.writesDone).toBe(200);
    const reads = host.log.filter((l) => l.startsWith('read'));
    expect(reads).toHaveLength(600);
    expect(reads.every((r) => r.endsWith(' 0 64'))).toBe(true);
    expect(guest.opsDone).toBe(256 + 800);
  });

  it('keeps every access inside a window of fraction × pages that moves every moveEveryS', () => {
    const host = new RecordingHost();
    const spec = { ...base, writeRatePagesPerS: 200, readRatePagesPerS: 200, workingSet: { fraction: 0.125, moveEveryS: 1 } };
    const guest = new SyntheticGuest(spec, asDomId(1), 9, { memory: host, hypercalls: host }, { durationNs: 4 * NS_PER_S });
    run(guest);
    expect(guest.workingSetPages).toBe(32);
    const steady = host.log.slice(1 + guest.imagePages + guest.privatePages).map((l) => Number(l.split(' ')[2]));
    expect(steady).toHaveLength(1600);
    // 400 accesses a second, one window each: 32 consecutive gfns (mod 256) hold all of them.
    const windows = [0, 1, 2, 3].map((w) => new Set(steady.slice(w * 400, (w + 1) * 400)));
    const starts = windows.map((set) => {
      const start = [...Array(256).keys()].find((s) => [...set].every((g) => (g - s + 256) % 256 < 32));
      expect(start).toBeDefined();
      return start!;
    });
    expect(windows.every((s) => s.size > 20)).toBe(true);
    expect(new Set(starts).size).toBeGreaterThan(1); // it moved
  });

  it('draws the same accesses for the same seed', () => {
    const mk = (seed: number) => {
      const host = new RecordingHost();
      run(new SyntheticGuest({ ...base, readRatePagesPerS: 50, workingSet: { fraction: 0.5, moveEveryS: 0.5 } }, asDomId(1), seed, { memory: host, hypercalls: host }, { durationNs: NS_PER_S }));
      return host.log.join('\n');
    };
    expect(mk(3)).toBe(mk(3));
    expect(mk(3)).not.toBe(mk(4));
  });

  it('without a working set and reads, draws exactly what it drew before (no extra PRNG draws)', () => {
    const a = new RecordingHost();
    const b = new RecordingHost();
    run(new SyntheticGuest(base, asDomId(1), 3, { memory: a, hypercalls: a }, { durationNs: NS_PER_S }));
    run(new SyntheticGuest({ ...base, readRatePagesPerS: 0 }, asDomId(1), 3, { memory: b, hypercalls: b }, { durationNs: NS_PER_S }));
    expect(a.log).toEqual(b.log);
    expect(a.log.filter((l) => l.startsWith('read'))).toEqual([]);
  });
});

describe('SyntheticGuest pauses on EIO / EAGAIN', () => {
  const spec = { ...base, readRatePagesPerS: 100 };

  it('pauses on EIO, retries the very same access retryNs later and finishes', () => {
    const clean = new RecordingHost();
    run(new SyntheticGuest(spec, asDomId(1), 2, { memory: clean, hypercalls: clean }, { durationNs: NS_PER_S }));
    const host = new RecordingHost();
    host.failures = ['', '', 'EIO', 'EAGAIN', '', 'EIO'];
    const guest = new SyntheticGuest(spec, asDomId(1), 2, { memory: host, hypercalls: host }, { durationNs: NS_PER_S, retryNs: 1000 });
    let sawPause = false;
    for (let t = guest.nextEventNs(); t !== Infinity; t = guest.nextEventNs()) {
      if (guest.state === 'running') host.steady = true;
      const paused = guest.paused;
      guest.step(t);
      if (guest.paused && !paused) {
        sawPause = true;
        expect(guest.nextEventNs()).toBe(t + 1000);
        expect(guest.lastPause).toMatchObject({ errno: expect.stringMatching(/^(EIO|EAGAIN)$/), atNs: t });
      }
    }
    expect(sawPause).toBe(true);
    expect(guest.state).toBe('done');
    expect(guest.pauses).toBe(3);
    expect(guest.failure).toBeNull();
    // Nothing skipped, nothing drawn twice: the same operations as without the faults.
    expect(host.log).toEqual(clean.log);
  });

  it('fails after maxConsecutivePauses failed retries in a row', () => {
    const host = new RecordingHost();
    host.failures = Array<string>(10).fill('EIO');
    const guest = new SyntheticGuest(spec, asDomId(1), 2, { memory: host, hypercalls: host }, { durationNs: NS_PER_S, maxConsecutivePauses: 3 });
    run(guest, host);
    expect(guest.state).toBe('failed');
    expect(guest.pauses).toBe(3);
    expect(guest.failure).toMatchObject({ errno: 'EIO' });
  });

  it('still fails on ENOMEM at once', () => {
    const host = new RecordingHost();
    host.failures = ['ENOMEM'];
    const guest = new SyntheticGuest(spec, asDomId(1), 2, { memory: host, hypercalls: host }, { durationNs: NS_PER_S });
    run(guest, host);
    expect(guest.state).toBe('failed');
    expect(guest.pauses).toBe(0);
    expect(guest.failure).toMatchObject({ errno: 'ENOMEM' });
  });

  it('resumes a boot batch after a pause without populating it again or redrawing private content', () => {
    const clean = new FakeHost();
    run(new SyntheticGuest({ ...base, zeroFraction: 0.25 }, asDomId(1), 4, { memory: clean, hypercalls: clean }));
    let writes = 0;
    const host = new FakeHost();
    const flaky = {
      readPage: host.readPage.bind(host),
      writePage(dom: DomId, gfn: Gfn, offset: number, src: Uint8Array, srcOffset: number, length: number) {
        // The 150th boot write (after 128 image pages and 64 zero ones: a private page) fails once.
        if (++writes === 150) throw new HypervisorError('EIO', 'write', 'swap-in failed');
        host.writePage(dom, gfn, offset, src, srcOffset, length);
      },
    };
    const guest = new SyntheticGuest({ ...base, zeroFraction: 0.25 }, asDomId(1), 4, { memory: flaky, hypercalls: host });
    run(guest);
    expect(guest.state).toBe('done');
    expect(guest.pauses).toBe(1);
    expect(host.populateCalls).toBe(1);
    expect(host.log).toEqual(clean.log);
  });

  it('refuses bad retry options', () => {
    const host = new FakeHost();
    expect(() => new SyntheticGuest(base, asDomId(1), 1, { memory: host, hypercalls: host }, { retryNs: 0 })).toThrow(RangeError);
    expect(() => new SyntheticGuest(base, asDomId(1), 1, { memory: host, hypercalls: host }, { maxConsecutivePauses: -1 })).toThrow(RangeError);
  });
});
