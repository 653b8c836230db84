import type { GuestShim } from '@pagevisor/hypercall-abi';
import type { Hypervisor } from '@pagevisor/hypervisor';
import { HypervisorError, InvariantError, NS_PER_MS, NS_PER_S, PAGE_SIZE, type DomId, type ErrnoName, type Gfn } from '@pagevisor/types';
import { fillSeededPage, PAGE_WORDS, type ExpectedContent, type Step } from '@pagevisor/workloads';
import type { CheckpointRecord, StepResult } from './report.js';

/** A guest as the steps reach it. */
export interface StepGuest {
  /** Its domain. */
  readonly domId: DomId;
  /**
   * Its kernel's memory shim, the one that mapped its RAM (a SyntheticGuest's `shim`): the
   * madvise, discard and populate steps are its system calls.
   */
  readonly shim: GuestShim;
  /**
   * What its pages should hold, when the run verifies them (`--verify`): the steps that change
   * content (fill, write, discard, populate) record what they did here once it succeeded.
   */
  readonly content?: ExpectedContent;
}

/** The `full_scans` counter of the strategy's stats, or undefined when it keeps none. */
export function fullScansOf(hv: Hypervisor): number | undefined {
  return hv.dedup.stats()['full_scans'];
}

/**
 * Runs a scenario's steps against a hypervisor, in order, on the event loop's clock.
 *
 * The loop calls {@link start} once every guest has booted, then {@link run} whenever
 * {@link nextNs} is due (after the guests' and the scanner's events of that time). Steps other
 * than waits take no simulated time: {@link run} does them back to back up to the next wait.
 * `wait` makes the next step due `ms` later; `wait_full_scans` blocks until
 * {@link afterScannerWake} sees full_scans risen by `count` (due at its timeout meanwhile, when
 * it fails). `madvise` is the guest shim's madvise, `discard` its munmap and `populate` its mmap
 * at the given gfn (MAP_FIXED_NOREPLACE, MAP_POPULATE), `fork` its fork into a new domain of
 * the step's name (a guest of the later steps); fills and writes are the guest's stores.
 * A guest with `content` (a run with `--verify`) has each fill, write, discard and populate that
 * succeeded recorded there, page by page.
 * A refused operation (a {@link HypervisorError}) is recorded and the next step runs,
 * unless the step's `expect` says otherwise: a step whose outcome differs from its `expect`, or a
 * wait that cannot progress, fails, and no further step runs.
 */
export class StepRunner {
  /** What each step did, in order. */
  readonly results: StepResult[] = [];
  /** The checkpoints' records, in order. */
  readonly checkpoints: CheckpointRecord[] = [];

  private readonly steps: readonly Step[];
  private readonly hv: Hypervisor;
  private readonly guests: Map<string, StepGuest>;
  private readonly page32 = new Uint32Array(PAGE_WORDS);
  private readonly page8 = new Uint8Array(this.page32.buffer);
  private next = 0;
  private dueNs = Infinity;
  private started = false;
  private failedValue = false;
  /** full_scans to reach while a wait_full_scans is blocked; -1 otherwise. */
  private scansTarget = -1;
  /** End of the current `wait` step, in ns; -1 when none is under way. */
  private waitEndNs = -1;

  private readonly onFork: ((name: string, child: StepGuest) => void) | undefined;

  /** `onFork` hears of each child a `fork` step made, once it is made. */
  constructor(steps: readonly Step[], hv: Hypervisor, guests: ReadonlyMap<string, StepGuest>, onFork?: (name: string, child: StepGuest) => void) {
    this.steps = steps;
    this.hv = hv;
    this.guests = new Map(guests);
    this.onFork = onFork;
  }

  /** Simulated time the next step is due, in ns; Infinity before {@link start} and once done. */
  get nextNs(): number {
    return this.dueNs;
  }

  /** True once every step has run, or a step failed. */
  get done(): boolean {
    return this.started && this.dueNs === Infinity;
  }

  /** True when a step failed. */
  get failed(): boolean {
    return this.failedValue;
  }

  /** True while a wait_full_scans waits for the scanner. */
  get waitingForScans(): boolean {
    return this.scansTarget >= 0;
  }

  /** Every guest has booted: the first step is due at `nowNs`. */
  start(nowNs: number): void {
    if (this.started) return;
    this.started = true;
    this.dueNs = this.steps.length > 0 ? nowNs : Infinity;
  }

  /** Runs the steps due at `nowNs`, up to the next wait. */
  run(nowNs: number): void {
    if (this.scansTarget >= 0) {
      // Due while still blocked: the timeout.
      const step = this.steps[this.next] as Extract<Step, { op: 'wait_full_scans' }>;
      this.fail(step, nowNs, `full_scans did not rise by ${step.count} within ${step.timeoutS} simulated s (it is ${fullScansOf(this.hv)}, waiting for ${this.scansTarget})`);
      return;
    }
    if (this.waitEndNs >= 0) {
      this.waitEndNs = -1;
      this.record(this.steps[this.next]!, nowNs, null);
      if (this.failedValue) return;
    }
    while (this.next < this.steps.length) {
      const step = this.steps[this.next]!;
      if (step.op === 'wait') {
        this.waitEndNs = nowNs + Math.round(step.ms * NS_PER_MS);
        this.dueNs = this.waitEndNs;
        return;
      }
      if (step.op === 'wait_full_scans') {
        const scans = fullScansOf(this.hv);
        if (scans === undefined) {
          this.fail(step, nowNs, `the strategy "${this.hv.dedup.name}" keeps no full_scans counter`);
          return;
        }
        this.scansTarget = scans + step.count;
        this.dueNs = nowNs + Math.round(step.timeoutS * NS_PER_S);
        return;
      }
      this.record(step, nowNs, this.attempt(step, nowNs));
      if (this.failedValue) return;
    }
    this.dueNs = Infinity;
  }

  /** After a scanner wake-up at `nowNs`: ends a wait_full_scans whose scans have risen. */
  afterScannerWake(nowNs: number): void {
    if (this.scansTarget < 0) return;
    if ((fullScansOf(this.hv) ?? 0) < this.scansTarget) return;
    this.scansTarget = -1;
    this.record(this.steps[this.next]!, nowNs, null);
    if (!this.failedValue) this.dueNs = nowNs;
  }

  /**
   * Nothing else can happen (no guest runs, the scanner has nothing to do) while a
   * wait_full_scans is blocked: it fails at `nowNs`.
   */
  stall(nowNs: number): void {
    if (this.scansTarget < 0) return;
    const step = this.steps[this.next] as Extract<Step, { op: 'wait_full_scans' }>;
    this.fail(
      step,
      nowNs,
      `full_scans cannot rise: the scanner has nothing to do (run = 0, or no mergeable pages?) and no guest is running (it is ${fullScansOf(this.hv)}, waiting for ${this.scansTarget})`,
    );
  }

  private fail(step: Step, nowNs: number, message: string): void {
    this.scansTarget = -1;
    this.results.push({ op: step.op, tNs: nowNs, ok: false, message, ...(step.expect === undefined ? {} : { expect: step.expect }), failed: true });
    this.failedValue = true;
    this.dueNs = Infinity;
  }

  /** Records the outcome of the current step (`error` null: it succeeded) and moves on. */
  private record(step: Step, nowNs: number, error: HypervisorError | null): void {
    const outcome = error === null ? 'ok' : error.errnoName;
    const failed = step.expect !== undefined && step.expect !== outcome;
    let message: string | undefined;
    if (error !== null) message = failed ? `${error.message} (expected ${step.expect})` : error.message;
    else if (failed) message = `succeeded, but ${step.expect} was expected`;
    const result: StepResult = {
      op: step.op,
      tNs: nowNs,
      ok: error === null,
      ...(error === null ? {} : { errno: error.errnoName }),
      ...(message === undefined ? {} : { message }),
      ...(step.expect === undefined ? {} : { expect: step.expect }),
      failed,
    };
    this.results.push(result);
    this.next++;
    if (failed) {
      this.failedValue = true;
      this.dueNs = Infinity;
    }
  }

  /** Does an instantaneous step; returns the refusal, or null. */
  private attempt(step: Step, nowNs: number): HypervisorError | null {
    try {
      this.execute(step, nowNs);
      return null;
    } catch (e) {
      if (e instanceof HypervisorError) return e;
      throw e;
    }
  }

  private guest(name: string): StepGuest {
    // The scenario schema has checked every name.
    return this.guests.get(name)!;
  }

  private execute(step: Step, nowNs: number): void {
    const hv = this.hv;
    switch (step.op) {
      case 'fill':
        this.fill(step);
        return;
      case 'write': {
        const bytes = Uint8Array.from(step.bytes);
        const g = this.guest(step.guest);
        hv.writePage(g.domId, step.gfn as Gfn, step.offset, bytes, 0, bytes.length);
        g.content?.write(step.gfn, step.offset, bytes, 0, bytes.length);
        return;
      }
      case 'madvise': {
        const g = this.guest(step.guest);
        g.shim.madvise(step.gfn as Gfn, step.count, step.advice);
        // MADV_DONTNEED: the pages stay mapped and read as zeros.
        if (step.advice === 'dontneed') g.content?.populate(step.gfn, step.count);
        return;
      }
      case 'set_memory_merge':
        hv.setDomainMergeable(this.guest(step.guest).domId, step.on);
        return;
      case 'discard': {
        const g = this.guest(step.guest);
        try {
          g.shim.munmap(step.gfn as Gfn, step.count);
        } finally {
          // Refused part-way, a munmap keeps what it released out of the guest's regions.
          if (g.content !== undefined) unmappedOf(g, step.gfn, step.count);
        }
        return;
      }
      case 'populate': {
        const g = this.guest(step.guest);
        // A refused mmap maps nothing.
        g.shim.mmap(step.count, { fixed: step.gfn as Gfn, populate: true });
        g.content?.populate(step.gfn, step.count);
        return;
      }
      case 'fork': {
        const g = this.guest(step.guest);
        const parent = hv.domain('fork', g.domId);
        const child = hv.createDomain({ name: step.child, maxPages: hv.maximumReservation(g.domId), gfnCount: parent.table.size, trustGroup: parent.trustGroup });
        let shim;
        try {
          shim = g.shim.fork({ child });
        } catch (e) {
          hv.destroyDomain(child);
          throw e;
        }
        const forked: StepGuest = g.content === undefined ? { domId: child, shim } : { domId: child, shim, content: g.content.fork() };
        this.guests.set(step.child, forked);
        this.onFork?.(step.child, forked);
        return;
      }
      case 'set':
        if (hv.dedup.setKnob === undefined) {
          throw new HypervisorError('EOPNOTSUPP', 'set_knob', `the strategy "${hv.dedup.name}" has no knobs (cannot set ${step.knob})`);
        }
        hv.dedup.setKnob(step.knob, step.value);
        return;
      case 'checkpoint':
        this.checkpoints.push(this.checkpoint(step.label, nowNs));
        return;
      case 'wait':
      case 'wait_full_scans':
        throw new InvariantError(`StepRunner: ${step.op} is not instantaneous`);
    }
  }

  private fill(step: Extract<Step, { op: 'fill' }>): void {
    const page = this.page8;
    const { domId, content } = this.guest(step.guest);
    if (step.pattern !== undefined) page.fill(step.pattern);
    else fillSeededPage(this.page32, step.seed!, 0);
    const distinct = step.distinct === true;
    for (let i = 0; i < step.count; i++) {
      if (distinct && i > 0) fillSeededPage(this.page32, step.seed!, i);
      try {
        this.hv.writePage(domId, (step.gfn + i) as Gfn, 0, page, 0, PAGE_SIZE);
        if (content !== undefined) {
          if (step.pattern !== undefined) content.setPatternPage(step.gfn + i, step.pattern);
          else content.setSeededPage(step.gfn + i, step.seed!, distinct ? i : 0);
        }
      } catch (e) {
        if (!(e instanceof HypervisorError) || i === 0) throw e;
        throw new HypervisorError(e.errnoName as ErrnoName, e.op, `${e.detail} (after filling ${i} of ${step.count} pages)`);
      }
    }
  }

  private checkpoint(label: string, nowNs: number): CheckpointRecord {
    const hv = this.hv;
    const domains = hv.allDomainStats().map((d) => {
      const extra = hv.dedup.domainStats?.(d.domId as DomId) ?? {};
      const merged: Record<string, number | string> = { ...d };
      // The hypervisor's figures win a name clash: they are what the audit checks.
      for (const [k, v] of Object.entries(extra)) if (!(k in merged)) merged[k] = v;
      return merged as CheckpointRecord['domains'][number];
    });
    return {
      label,
      tNs: nowNs,
      totals: hv.totals(),
      dedup: { ...hv.dedup.stats() },
      knobs: { ...(hv.dedup.knobs?.() ?? {}) },
      domains,
    };
  }
}

/** Records as unpopulated the pages of `[gfn, gfn + count)` that are in none of the guest's regions. */
function unmappedOf(g: StepGuest, gfn: number, count: number): void {
  const regions = g.shim.regions();
  for (let p = gfn; p < gfn + count; p++) {
    if (!regions.some((r) => p >= r.start && p < r.start + r.pages)) g.content!.unpopulate(p, 1);
  }
}
