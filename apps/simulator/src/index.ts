export { runScenario, timelineSample, type RunOptions, type RunProgress } from './run-scenario.js';
export type {
  CheckpointRecord,
  CpuStats,
  DedupReport,
  FailureRecord,
  GuestRecord,
  MemoryReport,
  PauseRecord,
  Report,
  ReportConfig,
  StepResult,
  SwapReport,
  TimelineSample,
  VerifyDifference,
  VerifyReport,
  VerifyUnreadable,
  WallStats,
} from './report.js';
export { formatSummary } from './summary.js';
export { renderHtmlReport, writeHtmlReport } from './html-report.js';
export { domainsCsv, timelineCsv, writeCsvReport } from './csv-report.js';
export { formatReplay, replayTrace, type ReplayOptions, type ReplayReport } from './replay.js';
export { BUILT_IN_PLUGINS, loadPlugin, packageDirOf, packageNameOf, type LoadedPlugin } from './plugins.js';
export { makeAllocator, makeDedup, partsContext, type BuiltPart, type PartsContext } from './make-parts.js';
export { ExitCode, main, type CliIo } from './cli.js';
export { VERSION } from './version.js';
export {
  buildReplayer,
  formatKsmDiff,
  HostUnavailable,
  ksmDiff,
  knobLines,
  NotReplayable,
  replayOnKernel,
  replayScript,
  REPLAY_SOURCE,
  type BootedMemory,
  type KsmDiff,
} from './ksm-diff.js';
export { QUEUE_NAME, QueueError, runWorker, type WorkerOptions } from './sweep/queue.js';
export { hasRedisServer, startRedis } from './sweep/redis-server.js';
export type { ResultRow } from './sweep/results.js';
export { formatSweep, loadSweep, runJobs, runSweep, type SweepOptions, type SweepOutcome, type SweepProgress } from './sweep/sweep.js';
