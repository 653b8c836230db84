import { describe, expect, it } from 'vitest';
import { findMetadata, simReportFigures } from './sim-report.js';

const base = {
  scenario: 's',
  simulatedNs: 5e9,
  totals: { guestPages: 1000, machineFramesUsed: 600, savedPct: 40, failedGuests: 0 },
  cpu: { guestNs: 1, dedupNs: 2, totalNs: 3 },
  wall: { totalMs: 123 },
};

describe('simReportFigures', () => {
  it('reads the figures of a report without swap or metadata', () => {
    expect(simReportFigures(base)).toEqual({
      scenario: 's',
      simulatedNs: 5e9,
      guestPages: 1000,
      machineFramesUsed: 600,
      savedPct: 40,
      failedGuests: 0,
      cpuTotalNs: 3,
      wallMs: 123,
    });
  });

  it('reads the disk peak of the run own swap mode', () => {
    const swap = { mode: 'per-domain', policy: 'lru', swapOuts: 5, swapIns: 4, swapDiskBytesShared: null, swapDiskBytesPerDomain: 8192 };
    expect(simReportFigures({ ...base, swap }).swap).toEqual({ mode: 'per-domain', policy: 'lru', diskPeakBytes: 8192, swapOuts: 5, swapIns: 4 });
    expect(() => simReportFigures({ ...base, swap: { ...swap, mode: 'shared' } })).toThrow(/swapDiskBytesShared is not a finite number/);
  });

  it('reads the duplicate frames and the swap-ins that mapped a resident frame, when the report has them', () => {
    const swap = { mode: 'shared', policy: 'clock', swapOuts: 5, swapIns: 4, swapInsCached: 2, swapInsDeduped: 1, swapDiskBytesShared: 4096 };
    const f = simReportFigures({ ...base, totals: { ...base.totals, duplicateFrames: 0, pagedPages: 7 }, swap });
    expect([f.duplicateFrames, f.pagedPages]).toEqual([0, 7]);
    expect(f.swap).toEqual({ mode: 'shared', policy: 'clock', diskPeakBytes: 4096, swapOuts: 5, swapIns: 4, swapInsCached: 2, swapInsDeduped: 1 });
    // An older report without them: left out, not an error.
    expect('duplicateFrames' in simReportFigures(base)).toBe(false);
    expect(simReportFigures({ ...base, swap: { ...swap, swapInsCached: undefined, swapInsDeduped: null } }).swap).toEqual({ mode: 'shared', policy: 'clock', diskPeakBytes: 4096, swapOuts: 5, swapIns: 4 });
  });

  it('reads the name of the dedup strategy that ran, when the report has one', () => {
    expect(simReportFigures({ ...base, dedup: { strategy: 'my-hash-map' } }).strategy).toBe('my-hash-map');
    expect(simReportFigures(base).strategy).toBeUndefined();
  });

  it('names a missing field', () => {
    expect(() => simReportFigures({ ...base, cpu: {} })).toThrow(/cpu\.totalNs/);
    expect(() => simReportFigures(null)).toThrow(/not a JSON object/);
  });
});

describe('findMetadata', () => {
  it('takes a per-guest-page figure as it is', () => {
    expect(findMetadata({ memory: { metadataBytes: 12000, metadataBytesPerGuestPage: 12 } }, 1000)).toEqual({ bytesPerGuestPage: 12, field: 'memory.metadataBytesPerGuestPage' });
  });

  it('divides a byte total by the guest pages', () => {
    expect(findMetadata({ totals: { metadataBytes: 15000 } }, 1000)).toEqual({ bytesPerGuestPage: 15, field: 'totals.metadataBytes / totals.guestPages' });
  });

  it('finds nothing in a report without a metadata figure', () => {
    expect(findMetadata(base, 1000)).toBeUndefined();
    expect(findMetadata({ memory: { metadataBytes: 10 } }, 0)).toBeUndefined();
  });
});
