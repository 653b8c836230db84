import { z } from 'zod';
import { PluginSpecSchema } from './plugin-spec.js';
import { bool, fraction, must, name, nonNegativeInt, object, positiveInt, whenValid } from './schema-helpers.js';

/** Compressions a scenario may choose. */
export const SWAP_COMPRESSION_NAMES = ['none', 'deflate', 'lz4'] as const;

function oneOf<T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, must(values.map((v) => `"${v}"`).join(', ').replace(/, ([^,]*)$/, ' or $1')));
}

const opNumbers = () => z.array(positiveInt(), must('an array of positive integers (1-based operation numbers)'));

/** Faults injected into the swap device (the options of @pagevisor/swap's FaultPlan); all off by default. */
export const SwapFaultsSchema = object({
  /** Seed of the probabilistic faults (default 1). */
  seed: nonNegativeInt().optional(),
  /** Probability that a device write fails with EIO. */
  writeErrorProbability: fraction().optional(),
  /** Probability that a device read fails with EIO. */
  readErrorProbability: fraction().optional(),
  /** Probability that a device write is short (a prefix written, then EIO). */
  shortWriteProbability: fraction().optional(),
  /** 1-based write operation numbers that fail with EIO. */
  failWriteAt: opNumbers().optional(),
  /** 1-based read operation numbers that fail with EIO. */
  failReadAt: opNumbers().optional(),
  /** 1-based write operation numbers that are short writes. */
  shortWriteAt: opNumbers().optional(),
  /** After this many successful writes the device is full (ENOSPC). */
  fullAfterWrites: nonNegativeInt().optional(),
});

/**
 * The machine's swap: `{ "mode": "shared", "device": "memory", "policy": "clock" }`. Without it
 * the host has no swap and guests fail with ENOMEM once RAM is full. `policy`, `backend` and
 * `device` name plugins; `compression` is an option of the backend, `path`, `fsync` and `faults`
 * options of the device.
 */
export const SwapConfigSchema = object({
  /** `"shared"` (default: one area for every domain, identical pages stored once) or `"per-domain"` (one area a domain, no sharing). */
  mode: oneOf(['shared', 'per-domain'] as const).default('shared'),
  /** `"memory"` (default), `"file"` (a real file of 4 KiB slots), or a swap-device plugin. */
  device: PluginSpecSchema.default('memory'),
  /** The area over the device: `"shared-swap"` (default: @pagevisor/swap's SharedSwap), or a swap-backend plugin. */
  backend: PluginSpecSchema.default('shared-swap'),
  /** Slots of the area (per-domain: of each domain's area); default enough for every guest page (per-domain: for the domain's pages). */
  slots: positiveInt().optional(),
  /** File of the file device (default a temporary file removed at the end); never shown in reports. */
  path: name().optional(),
  /** Compression of each slot: `"none"` (default), `"deflate"` or `"lz4"` (an option of the backend). */
  compression: oneOf(SWAP_COMPRESSION_NAMES).optional(),
  /** fsync policy of the file device: `"never"` (default) or `"always"` (an option of the device). */
  fsync: oneOf(['never', 'always'] as const).optional(),
  /** Eviction policy: `"clock"` (default), `"lru"`, `"random"`, or an eviction-policy plugin. */
  policy: PluginSpecSchema.default('clock'),
  /** Free frames below which eviction starts (default the hypervisor's: max(4, frames / 64)). */
  lowWatermark: positiveInt().optional(),
  /** Free frames eviction restores (default the hypervisor's: 2 × lowWatermark). */
  highWatermark: positiveInt().optional(),
  /** Faults injected into the device(s) (default none). */
  faults: SwapFaultsSchema.optional(),
  /** Run the scenario a second time in the other mode and report both disk peaks (default false). */
  compareBaseline: bool().default(false),
}).superRefine((s, ctx) => {
  if (s.lowWatermark !== undefined && s.highWatermark !== undefined && s.highWatermark < s.lowWatermark) {
    ctx.addIssue({ code: 'custom', path: ['highWatermark'], message: `must be at least lowWatermark (${s.lowWatermark}); got ${s.highWatermark}` });
  }
  for (const field of ['path', 'fsync'] as const) {
    if (s[field] !== undefined && s.device !== 'file') ctx.addIssue({ code: 'custom', path: [field], message: 'applies to device "file" only (a device plugin takes its options in { "plugin": ..., ...options })' });
  }
}, whenValid);

/** A validated `machine.swap`. */
export type SwapConfig = z.output<typeof SwapConfigSchema>;
/** A validated `machine.swap.faults`. */
export type SwapFaults = z.output<typeof SwapFaultsSchema>;
/** Name of a compression. */
export type SwapCompressionName = (typeof SWAP_COMPRESSION_NAMES)[number];
