import type { Scenario } from '@pagevisor/workloads';
import type { Report } from '../report.js';
import { runScenario } from '../run-scenario.js';

/** A job as a worker gets it: its id, its scenario, and where its relative plugin paths resolve from. */
export interface JobMessage {
  readonly id: string;
  readonly scenario: Scenario;
  readonly baseDir: string;
}

/** What a worker gives back: the job's report, or why it failed. */
export type JobResult = { readonly id: string; readonly report: Report } | { readonly id: string; readonly error: string };

/** Runs one job; a refusal (bad plugin, invariant) is its result, not a throw. */
export async function runJob(job: JobMessage): Promise<JobResult> {
  try {
    return { id: job.id, report: await runScenario(job.scenario, { baseDir: job.baseDir }) };
  } catch (e) {
    return { id: job.id, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}
