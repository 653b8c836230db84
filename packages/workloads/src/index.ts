export {
  DedupConfigSchema,
  dedupOptionsOf,
  domainNames,
  formatPath,
  GuestSpecSchema,
  ImageSchema,
  MACHINE_CONTENTS,
  MachineSchema,
  MAX_MACHINE_MIB,
  MAX_SAMPLES,
  parseScenario,
  ScenarioError,
  ScenarioSchema,
  WorkingSetSchema,
  type DedupConfig,
  type GuestSpec,
  type MachineContents,
  type Scenario,
  type ScenarioInput,
} from './scenario.js';
export {
  CheckpointStepSchema,
  DEFAULT_WAIT_TIMEOUT_S,
  DiscardStepSchema,
  FillStepSchema,
  ForkStepSchema,
  MadviseStepSchema,
  PopulateStepSchema,
  SetMemoryMergeStepSchema,
  SetStepSchema,
  STEP_EXPECTATIONS,
  STEP_OPS,
  StepSchema,
  WaitFullScansStepSchema,
  WaitStepSchema,
  WriteStepSchema,
  type Step,
  type StepInput,
  type StepOp,
} from './steps.js';
export { DEFAULT_SCENARIO } from './default-scenario.js';
export { scenarioJsonSchema, sweepJsonSchema } from './json-schema.js';
export { expandSweep, jobId, parseSweep, SweepError, SweepSchema, type Sweep, type SweepInput, type SweepJob } from './sweep.js';
export { ImageError } from './images/image-error.js';
export {
  IMAGE_FORMATS,
  MAX_IMAGE_PAGES,
  type ImageFormat,
  type ImageRegion,
  type SkippedRange,
  type SkipReason,
} from './images/image-file.js';
export { openGuestImage, type GuestImage } from './images/guest-image.js';
export { DEFAULT_IMAGE_READER_OPTIONS, ImageReader, type ImageReaderOptions, type ImageSource } from './images/image-reader.js';
export { ET_CORE, PN_XNUM, PT_LOAD, PT_NOTE } from './images/elf-image.js';
export {
  PROC_ENTRY_BYTES,
  PROC_HEADER_BYTES,
  PROC_IMAGE_MAGIC,
  PROC_IMAGE_VERSION,
  PROC_SKIP_REASONS,
  ProcFlags,
  procPerms,
} from './images/proc-image.js';
export { buildElfCore, buildProcImage, type ElfSegmentSpec, type ProcRegionSpec, type ProcSkippedSpec } from './images/build-image.js';
export { checkScenarioImages, resolveImagePaths } from './images/scenario-images.js';
export { fillImagePage, fillPrivatePage, fillPrivatePageFromSeeds, fillSeededPage, imageSeed, PAGE_WORDS } from './page-content.js';
export { ExpectedContent, ExpectedKind, type ContentFingerprints, type ExpectedContentOptions, type ExpectedContentStats } from './expected-content.js';
export {
  DEFAULT_SYNTHETIC_GUEST_OPTIONS,
  PageKind,
  PAUSING_ERRNOS,
  SyntheticGuest,
  type GuestFailure,
  type GuestPause,
  type GuestHypercalls,
  type GuestPorts,
  type GuestState,
  type SyntheticGuestOptions,
  type SyntheticGuestSpec,
} from './synthetic-guest.js';
export {
  SWAP_COMPRESSION_NAMES,
  SwapConfigSchema,
  SwapFaultsSchema,
  type SwapCompressionName,
  type SwapConfig,
  type SwapFaults,
} from './swap-config.js';
export {
  MAX_TRACE_DOMAIN_PAGES,
  MAX_TRACE_DOMAINS,
  MAX_TRACE_NAME_BYTES,
  TRACE_EVENT_KIND_NAMES,
  TRACE_MAGIC,
  TRACE_VERSION,
  TraceEventKind,
  TraceFormatError,
  type TraceDomain,
  type TraceEvent,
  type TraceHeader,
} from './trace/trace-format.js';
export {
  DEFAULT_TRACE_WRITER_OPTIONS,
  TraceWriter,
  type TraceWriteSummary,
  type TraceWriterHeader,
  type TraceWriterOptions,
} from './trace/trace-writer.js';
export { DEFAULT_TRACE_READER_OPTIONS, TraceReader, type TraceReaderOptions } from './trace/trace-reader.js';
export { FINGERPRINT_PAGE_MARK, fillFingerprintPage } from './trace/fingerprint-page.js';
export { DEFAULT_GENERATE_TRACE_OPTIONS, generateTrace, type GeneratedTrace, type GenerateTraceOptions } from './trace/generate-trace.js';
export {
  DEFAULT_TRACE_REPLAY_OPTIONS,
  replayTraceEvents,
  type TraceRefusal,
  type TraceReplayOptions,
  type TraceReplayResult,
  type TraceReplayTarget,
} from './trace/replay-events.js';
export { PluginSpecSchema, specOf, type PluginSpec } from './plugin-spec.js';
