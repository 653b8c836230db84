/** The figures the runner reads from a `pagevisor run --json` report (apps/simulator/src/report.ts). */
export interface SimReportFigures {
  readonly scenario: string;
  /** Name of the dedup strategy that ran (the report's `dedup.strategy`), when the report names it. */
  readonly strategy?: string;
  /** Simulated time at the end, ns. */
  readonly simulatedNs: number;
  readonly guestPages: number;
  readonly machineFramesUsed: number;
  readonly savedPct: number;
  readonly failedGuests: number;
  /**
   * Resident frames whose content another resident frame holds (the report's
   * `totals.duplicateFrames`, `Hypervisor.duplicateFrames()` at the end), when the report has it.
   */
  readonly duplicateFrames?: number;
  /** Guest pages out on swap at the end (`totals.pagedPages`; saved % does not count them), when the report has it. */
  readonly pagedPages?: number;
  /** Simulated CPU time, guests' and the dedup strategy's, ns. */
  readonly cpuTotalNs: number;
  /** Wall milliseconds of the run inside the simulator (setup, event loop, audit). */
  readonly wallMs: number;
  /** Swap figures, when the scenario has swap. */
  readonly swap?: {
    readonly mode: string;
    readonly policy: string;
    /** Peak device bytes of this run's mode. */
    readonly diskPeakBytes: number;
    readonly swapOuts: number;
    readonly swapIns: number;
    /** Faults that mapped the frame caching their slot, and swap-ins that mapped a resident frame of equal content (when the report has them). */
    readonly swapInsCached?: number;
    readonly swapInsDeduped?: number;
  };
  /**
   * Metadata bytes per guest page, when the report carries a metadata figure (it did not when
   * this runner was written), and the field it came from.
   */
  readonly metadata?: { readonly bytesPerGuestPage: number; readonly field: string };
}

function num(o: unknown, path: string): number {
  let v: unknown = o;
  for (const k of path.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`simulator report: ${path} is not a finite number`);
  return v;
}

/** `{ [key]: o[key] }` when `o[key]` is a finite number, else nothing (a figure older reports lack). */
function optional<K extends string>(o: unknown, key: K): { [k in K]?: number } {
  const v = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[key] : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? ({ [key]: v } as { [k in K]?: number }) : {};
}

/**
 * A metadata figure anywhere in the report's top level, `totals` or `memory`: a numeric field
 * whose name says metadata. One per guest page is taken as is; a byte total is divided by the
 * guest pages.
 */
export function findMetadata(report: Record<string, unknown>, guestPages: number): SimReportFigures['metadata'] {
  const places: [string, unknown][] = [['', report], ['totals.', report['totals']], ['memory.', report['memory']], ['metadata.', report['metadata']]];
  let total: { field: string; value: number } | undefined;
  for (const [prefix, o] of places) {
    if (typeof o !== 'object' || o === null) continue;
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      const field = prefix + k;
      if (!/metadata/i.test(field)) continue;
      if (/per(guest)?page/i.test(k)) return { bytesPerGuestPage: v, field };
      if (/bytes$/i.test(k) || prefix === 'metadata.') total ??= { field, value: v };
    }
  }
  return total === undefined || guestPages <= 0 ? undefined : { bytesPerGuestPage: total.value / guestPages, field: `${total.field} / totals.guestPages` };
}

/** The figures of a parsed `pagevisor run --json` report; throws naming a missing field. */
export function simReportFigures(report: unknown): SimReportFigures {
  if (typeof report !== 'object' || report === null) throw new Error('simulator report: not a JSON object');
  const r = report as Record<string, unknown>;
  const guestPages = num(r, 'totals.guestPages');
  const swap = r['swap'] as Record<string, unknown> | undefined;
  let swapFigures: SimReportFigures['swap'];
  if (swap !== undefined) {
    const mode = String(swap['mode']);
    swapFigures = {
      mode,
      policy: String(swap['policy']),
      diskPeakBytes: num(swap, mode === 'shared' ? 'swapDiskBytesShared' : 'swapDiskBytesPerDomain'),
      swapOuts: num(swap, 'swapOuts'),
      swapIns: num(swap, 'swapIns'),
      ...optional(swap, 'swapInsCached'),
      ...optional(swap, 'swapInsDeduped'),
    };
  }
  const metadata = findMetadata(r, guestPages);
  const dedup = r['dedup'] as Record<string, unknown> | undefined;
  const strategy = typeof dedup === 'object' && dedup !== null && typeof dedup['strategy'] === 'string' ? dedup['strategy'] : undefined;
  return {
    scenario: String(r['scenario']),
    ...(strategy === undefined ? {} : { strategy }),
    simulatedNs: num(r, 'simulatedNs'),
    guestPages,
    machineFramesUsed: num(r, 'totals.machineFramesUsed'),
    savedPct: num(r, 'totals.savedPct'),
    failedGuests: num(r, 'totals.failedGuests'),
    ...optional(r['totals'], 'duplicateFrames'),
    ...optional(r['totals'], 'pagedPages'),
    cpuTotalNs: num(r, 'cpu.totalNs'),
    wallMs: num(r, 'wall.totalMs'),
    ...(swapFigures === undefined ? {} : { swap: swapFigures }),
    ...(metadata === undefined ? {} : { metadata }),
  };
}
