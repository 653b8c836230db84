import { NS_PER_MS, NS_PER_S, PAGE_SIZE } from '@pagevisor/types';
import type { Report, VerifyDifference, VerifyReport } from './report.js';

/** An integer as the CLI's human output writes it, with thousands separators: 93,784. */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

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
    ['paged pages', count(report.totals.pagedPages)],
    ['swap', `${w.mode}, ${w.device} device, ${w.policy} eviction, compression ${w.compression}`],
    ['swap outs / ins', `${count(w.swapOuts)} / ${count(w.swapIns)}`],
    ['swap-ins shared', `${count(w.swapInsCached)} from the swap cache, ${count(w.swapInsDeduped)} by the dedup index`],
    ['swap slots used', count(w.swapSlotsUsed)],
    ['swap written', mib(w.swapBytesWritten)],
    ['slots saved by dedup', count(w.slotsSavedByDedup)],
    ['compression ratio', w.compressionRatio.toFixed(2)],
    ['swap disk shared', mib(w.swapDiskBytesShared)],
    ['swap disk per-domain', mib(w.swapDiskBytesPerDomain)],
    ['swap failures', `${count(w.evictionFailures)} evictions, ${count(w.swapInFailures)} swap-ins, ${count(w.pauses.length)} guest pauses`],
  ];
}

function difference(d: VerifyDifference, withTime: boolean): string {
  const where = `  ${d.guest} (dom ${d.domId}) gfn ${d.gfn}${withTime ? ` at ${seconds(d.tNs)}` : ''}`;
  if (d.offset === null) return `${where}: ${d.state ?? 'populated state differs'}`;
  const hex = (b: number): string => `0x${b.toString(16).padStart(2, '0')}`;
  return `${where}: first differing byte at offset ${d.offset} (expected ${hex(d.expected!)}, read ${hex(d.actual!)}), ${count(d.differingBytes)} of ${count(PAGE_SIZE)} bytes differ`;
}

/** The `--verify` lines: one line with the verdict, then what differed and what was not verified. */
export function verifyLines(v: VerifyReport): string[] {
  const e = v.end;
  const sm = v.samples;
  const sampled = `${count(sm.pagesVerified)} sampled at ${count(sm.checks)} samples (${sm.mode === 'resident' ? 'resident pages only' : 'readPage'}), ${count(sm.pagesDiffered)} differ`;
  const lines = [
    `verify: ${v.passed ? 'passed' : 'FAILED'}: ${count(e.pagesVerified)} pages read back${e.pagesUnpopulated > 0 ? ` (+${count(e.pagesUnpopulated)} unpopulated as expected)` : ''}, ${count(e.pagesDiffered)} differ${e.pagesUnreadable > 0 ? `, ${count(e.pagesUnreadable)} unreadable` : ''}; ${sampled}; ${count(v.guests.verified)} guests verified${v.guests.notVerified.length > 0 ? `, ${count(v.guests.notVerified.length)} not verified` : ''}`,
  ];
  if (e.pagesDiffered > 0) lines.push(`${count(e.pagesDiffered)} page(s) differ at the end:`, ...v.differences.map((d) => difference(d, false)));
  if (sm.pagesDiffered > 0) lines.push(`${count(sm.pagesDiffered)} sampled page(s) differed:`, ...sm.differences.map((d) => difference(d, true)));
  for (const u of v.unreadable) lines.push(`  ${u.guest} (dom ${u.domId}) gfn ${u.gfn} unreadable: ${u.message}`);
  for (const n of v.guests.notVerified) lines.push(`  ${n.guest} (dom ${n.domId}) not verified: ${n.reason}`);
  return lines;
}

/** Strategies that merge pages by scanning them after they are written, not as they are written. */
const SCANNING_STRATEGIES: ReadonlySet<string> = new Set(['ksm', 'esx']);

/**
 * The convergence line: when the frames used stopped moving (see `dedup.convergedAtNs`), or
 * that they were still moving when the run ended.
 */
function convergence(report: Report): string[] {
  const at = report.dedup.convergedAtNs;
  // convergedAtNs is the last sample's time when the figures moved up to it.
  const moving = report.timeline.length > 1 && at === report.timeline.at(-1)!.tNs;
  return moving ? ['convergence', `still changing at the end (last change at ${seconds(at)})`] : ['converged at', seconds(at)];
}

/** Why guests failed with ENOMEM: the general reason, or why a scanning strategy needs the RAM at boot. */
function enomemHint(report: Report): string {
  const c = report.config;
  const strategy = report.dedup.strategy;
  const booting = new Set(report.guests.filter((g) => g.pagesBooted < g.pages).map((g) => g.domId));
  const atBoot = report.failures.some((f) => f.errno === 'ENOMEM' && booting.has(f.domId));
  if (!(atBoot && SCANNING_STRATEGIES.has(strategy))) return `  ENOMEM: the guests need more frames than the machine has (dedup: ${strategy}).`;
  const pages = report.guests.reduce((n, g) => n + g.pages, 0);
  return [
    `  ENOMEM at boot under ${strategy}: a scanning strategy merges a page only after the guest has`,
    `  written it, so every page first needs a frame of its own: the machine needs RAM for all`,
    `  ${count(pages)} guest pages at boot (it has ${count(c.machine.frames)} frames). Give it more machine.memoryMiB,`,
    '  run fewer guests, or use inline dedup (--dedup inline), which shares each page as it is written.',
  ].join('\n');
}

/**
 * The human-readable summary `pagevisor run` prints: the machine (", fingerprints" after its
 * frames when they hold fingerprints), host totals, the dedup strategy with its
 * convergence and simulated CPU cost (and KSM's pages_shared, pages_sharing, full_scans when it
 * keeps them), swap figures when the machine has swap, steps, one line per domain (with its
 * paged pages under swap), what stopped each failed guest (and why, for ENOMEM) and the failed
 * step. Counts have thousands separators (93,784).
 */
export function formatSummary(report: Report): string {
  const t = report.totals;
  const c = report.config;
  const stateOf = new Map(report.guests.map((g) => [g.domId, g.state]));
  const pct = (n: number, of: number): string => (of === 0 ? '0.0%' : `${((n / of) * 100).toFixed(1)}%`);
  const noneRan = report.guests.length > 0 && report.guests.every((g) => g.state === 'failed');
  const swap = report.swap !== undefined;
  const domainHeader = ['dom', 'name', 'pages', 'private', 'shared', 'zero', ...(swap ? ['paged'] : []), 'cow faults', 'zero faults', 'state'];
  const lines: string[] = [
    `pagevisor ${report.pagevisor}: scenario "${report.scenario}", seed ${report.seed}`,
    `machine ${count(c.machine.memoryMiB)} MiB (${count(c.machine.frames)} frames${c.machine.contents === 'fingerprints' ? ', fingerprints' : ''}${c.machine.numaNodes > 1 ? `, ${c.machine.numaNodes} NUMA nodes` : ''}), ${c.machine.allocator} allocator, ${report.dedup.strategy} dedup`,
    '',
    ...table(
      [
        ['guests', count(report.guests.length)],
        ['guest pages', count(t.guestPages)],
        ['frames used', `${count(t.machineFramesUsed)} (${pct(t.machineFramesUsed, c.machine.frames)} of RAM)`],
        ['shared frames', count(t.pagesShared)],
        ['sharing pages', count(t.pagesSharing)],
        ['zero pages', count(t.zeroPages)],
        ['duplicate frames', count(t.duplicateFrames)],
        ['cow faults', count(t.cowFaults)],
        ['zero faults', count(t.zeroFaults)],
        ...swapLines(report),
        ['saved', noneRan ? `none: no guest ran to the end (${count(t.failedGuests)} failed)` : `${t.savedPct.toFixed(2)}%`],
        ['simulated time', seconds(report.simulatedNs)],
        ['failed guests', count(t.failedGuests)],
        ['dedup strategy', report.dedup.strategy],
        convergence(report),
        ['cpu guests', duration(report.cpu.guestNs)],
        ['cpu dedup', duration(report.cpu.dedupNs)],
        ...SCANNER_COUNTERS.filter((k) => report.dedup.stats[k] !== undefined).map((k) => [k, count(report.dedup.stats[k])]),
        ...(report.steps.length === 0 && c.steps.length === 0
          ? []
          : [['steps', `${count(report.steps.length)} of ${count(c.steps.length)} run, ${count(report.steps.filter((r) => !r.ok).length)} refused, ${count(t.failedSteps)} failed`]]),
        ...(report.checkpoints.length === 0 ? [] : [['checkpoints', report.checkpoints.map((cp) => cp.label).join(', ')]]),
      ],
      new Set(),
    ),
    '',
    ...table(
      [
        domainHeader,
        ...report.domains.map((d) => [
          String(d.domId),
          d.name,
          ...[d.totPages, d.privatePages, d.sharedPages, d.zeroPages, ...(swap ? [d.pagedPages] : []), d.cowFaults, d.zeroFaults].map(count),
          stateOf.get(d.domId) ?? '-',
        ]),
      ],
      // Numbers right-aligned: every column but the name and the state.
      new Set([...domainHeader.keys()].filter((i) => i !== 1 && i !== domainHeader.length - 1)),
    ),
  ];
  if (report.failures.length > 0) {
    lines.push('', `${count(report.failures.length)} guest(s) failed:`);
    for (const f of report.failures) {
      lines.push(`  ${f.guest} (dom ${f.domId}) at ${seconds(f.atNs)}: ${f.message}`);
    }
    if (report.failures.some((f) => f.errno === 'ENOMEM')) lines.push(enomemHint(report));
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
    `wall ${(report.wall.totalMs / 1000).toFixed(2)} s (setup ${(report.wall.setupMs / 1000).toFixed(2)} s), ${count(report.wall.guestPagesPerS)} guest pages/s, peak RSS ${mib(report.wall.peakRssBytes)}`,
  );
  return `${lines.join('\n')}\n`;
}
