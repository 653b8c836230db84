import { NS_PER_MS, NS_PER_S, PAGE_SIZE } from '@pagevisor/types';
import type { Report, VerifyDifference, VerifyReport } from './report.js';

function seconds(ns: number): string {
  return `${(ns / NS_PER_S).toFixed(2)} s`;
}

/** A simulated duration in the unit that suits it: s, ms or µs. */
function duration(ns: number): string {
  if (ns >= NS_PER_S) return seconds(ns);
  if (ns >= NS_PER_MS) return `${(ns / NS_PER_MS).toFixed(2)} ms`;
  return `${(ns / 1000).toFixed(2)} µs`;
}

/** KSM's counters shown in the summary when the strategy keeps them. */
const SCANNER_COUNTERS = ['pages_shared', 'pages_sharing', 'full_scans'] as const;

function table(rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number>): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) =>
    r
      .map((cell, c) => (rightAligned.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd(),
  );
}

function mib(bytes: number | null): string {
  return bytes === null ? '-' : `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}

/** The swap lines of the summary (none without swap). */
function swapLines(report: Report): string[][] {
  const w = report.swap;
  if (w === undefined) return [];
  return [
    ['paged pages', String(report.totals.pagedPages)],
    ['swap', `${w.mode}, ${w.device} device, ${w.policy} eviction, compression ${w.compression}`],
    ['swap outs / ins', `${w.swapOuts} / ${w.swapIns}`],
    ['swap-ins shared', `${w.swapInsCached} from the swap cache, ${w.swapInsDeduped} by the dedup index`],
    ['swap slots used', String(w.swapSlotsUsed)],
    ['swap written', mib(w.swapBytesWritten)],
    ['slots saved by dedup', String(w.slotsSavedByDedup)],
    ['compression ratio', w.compressionRatio.toFixed(2)],
    ['swap disk shared', mib(w.swapDiskBytesShared)],
    ['swap disk per-domain', mib(w.swapDiskBytesPerDomain)],
    ['swap failures', `${w.evictionFailures} evictions, ${w.swapInFailures} swap-ins, ${w.pauses.length} guest pauses`],
  ];
}

function difference(d: VerifyDifference, withTime: boolean): string {
  const where = `  ${d.guest} (dom ${d.domId}) gfn ${d.gfn}${withTime ? ` at ${seconds(d.tNs)}` : ''}`;
  if (d.offset === null) return `${where}: ${d.state ?? 'populated state differs'}`;
  const hex = (b: number): string => `0x${b.toString(16).padStart(2, '0')}`;
  return `${where}: first differing byte at offset ${d.offset} (expected ${hex(d.expected!)}, read ${hex(d.actual!)}), ${d.differingBytes} of ${PAGE_SIZE} bytes differ`;
}

/** The `--verify` lines: one line with the verdict, then what differed and what was not verified. */
export function verifyLines(v: VerifyReport): string[] {
  const e = v.end;
  const sm = v.samples;
  const sampled = `${sm.pagesVerified} sampled at ${sm.checks} samples (${sm.mode === 'resident' ? 'resident pages only' : 'readPage'}), ${sm.pagesDiffered} differ`;
  const lines = [
    `verify: ${v.passed ? 'passed' : 'FAILED'}: ${e.pagesVerified} pages read back${e.pagesUnpopulated > 0 ? ` (+${e.pagesUnpopulated} unpopulated as expected)` : ''}, ${e.pagesDiffered} differ${e.pagesUnreadable > 0 ? `, ${e.pagesUnreadable} unreadable` : ''}; ${sampled}; ${v.guests.verified} guests verified${v.guests.notVerified.length > 0 ? `, ${v.guests.notVerified.length} not verified` : ''}`,
  ];
  if (e.pagesDiffered > 0) lines.push(`${e.pagesDiffered} page(s) differ at the end:`, ...v.differences.map((d) => difference(d, false)));
  if (sm.pagesDiffered > 0) lines.push(`${sm.pagesDiffered} sampled page(s) differed:`, ...sm.differences.map((d) => difference(d, true)));
  for (const u of v.unreadable) lines.push(`  ${u.guest} (dom ${u.domId}) gfn ${u.gfn} unreadable: ${u.message}`);
  for (const n of v.guests.notVerified) lines.push(`  ${n.guest} (dom ${n.domId}) not verified: ${n.reason}`);
  return lines;
}

/**
 * The human-readable summary `pagevisor run` prints: host totals, the dedup strategy with its
 * convergence time and simulated CPU cost (and KSM's pages_shared, pages_sharing, full_scans when
 * it keeps them), swap figures when the machine has swap, steps, one line per domain, what stopped each failed guest and the failed step.
 */
export function formatSummary(report: Report): string {
  const t = report.totals;
  const c = report.config;
  const stateOf = new Map(report.guests.map((g) => [g.domId, g.state]));
  const pct = (n: number, of: number): string => (of === 0 ? '0.0%' : `${((n / of) * 100).toFixed(1)}%`);
  const lines: string[] = [
    `pagevisor ${report.pagevisor}: scenario "${report.scenario}", seed ${report.seed}`,
    `machine ${c.machine.memoryMiB} MiB (${c.machine.frames} frames${c.machine.numaNodes > 1 ? `, ${c.machine.numaNodes} NUMA nodes` : ''}), ${c.machine.allocator} allocator, ${report.dedup.strategy} dedup`,
    '',
    ...table(
      [
        ['guests', String(report.guests.length)],
        ['guest pages', String(t.guestPages)],
        ['frames used', `${t.machineFramesUsed} (${pct(t.machineFramesUsed, c.machine.frames)} of RAM)`],
        ['shared frames', String(t.pagesShared)],
        ['sharing pages', String(t.pagesSharing)],
        ['zero pages', String(t.zeroPages)],
        ['duplicate frames', String(t.duplicateFrames)],
        ['cow faults', String(t.cowFaults)],
        ['zero faults', String(t.zeroFaults)],
        ...swapLines(report),
        ['saved', `${t.savedPct.toFixed(2)}%`],
        ['simulated time', seconds(report.simulatedNs)],
        ['failed guests', String(t.failedGuests)],
        ['dedup strategy', report.dedup.strategy],
        ['converged at', seconds(report.dedup.convergedAtNs)],
        ['cpu guests', duration(report.cpu.guestNs)],
        ['cpu dedup', duration(report.cpu.dedupNs)],
        ...SCANNER_COUNTERS.filter((k) => report.dedup.stats[k] !== undefined).map((k) => [k, String(report.dedup.stats[k])]),
        ...(report.steps.length === 0 && c.steps.length === 0
          ? []
          : [['steps', `${report.steps.length} of ${c.steps.length} run, ${report.steps.filter((r) => !r.ok).length} refused, ${t.failedSteps} failed`]]),
        ...(report.checkpoints.length === 0 ? [] : [['checkpoints', report.checkpoints.map((cp) => cp.label).join(', ')]]),
      ],
      new Set(),
    ),
    '',
    ...table(
      [
        ['dom', 'name', 'pages', 'private', 'shared', 'zero', 'cow faults', 'zero faults', 'state'],
        ...report.domains.map((d) => [
          String(d.domId),
          d.name,
          String(d.totPages),
          String(d.privatePages),
          String(d.sharedPages),
          String(d.zeroPages),
          String(d.cowFaults),
          String(d.zeroFaults),
          stateOf.get(d.domId) ?? '-',
        ]),
      ],
      new Set([0, 2, 3, 4, 5, 6, 7]),
    ),
  ];
  if (report.failures.length > 0) {
    lines.push('', `${report.failures.length} guest(s) failed:`);
    for (const f of report.failures) {
      lines.push(`  ${f.guest} (dom ${f.domId}) at ${seconds(f.atNs)}: ${f.message}`);
    }
    if (report.failures.some((f) => f.errno === 'ENOMEM')) {
      lines.push(`  ENOMEM: the guests need more frames than the machine has (dedup: ${c.dedup.strategy}).`);
    }
  }
  if (report.verify !== undefined) lines.push('', ...verifyLines(report.verify));
  const failedStep = report.steps.find((r) => r.failed);
  if (failedStep !== undefined) {
    const i = report.steps.indexOf(failedStep);
    lines.push('', `step ${i} (${failedStep.op}) failed at ${seconds(failedStep.tNs)}: ${failedStep.message ?? ''}`);
  }
  lines.push(
    '',
    `metadata ${report.memory.metadataBytesPerGuestPage} bytes/guest page (${mib(report.memory.metadataBytes)})`,
    `wall ${(report.wall.totalMs / 1000).toFixed(2)} s (setup ${(report.wall.setupMs / 1000).toFixed(2)} s), ${report.wall.guestPagesPerS} guest pages/s, peak RSS ${mib(report.wall.peakRssBytes)}`,
  );
  return `${lines.join('\n')}\n`;
}
