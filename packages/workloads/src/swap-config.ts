import { z } from 'zod';
import { bool, fraction, must, name, nonNegativeInt, object, positiveInt, whenValid } from './schema-helpers.js';

/** Eviction policies a scenario may choose (those of @pagevisor/swap). */
export const SWAP_POLICY_NAMES = ['clock', 'lru', 'random'] as const;
/** Swap devices a scenario may choose. */
export const SWAP_DEVICE_NAMES = ['memory', 'file'] as const;
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
 * the host has no swap and guests fail with ENOMEM once RAM is full.
 */
export const SwapConfigSchema = object({
  /** `"shared"` (default: one area for every domain, identical pages stored once) or `"per-domain"` (one area a domain, no sharing). */
  mode: oneOf(['shared', 'per-domain'] as const).default('shared'),
  /** `"memory"` (default) or `"file"` (a real file of 4 KiB slots). */
  device: oneOf(SWAP_DEVICE_NAMES).default('memory'),
  /** Slots of the area (per-domain: of each domain's area); default enough for every guest page (per-domain: for the domain's pages). */
  slots: positiveInt().optional(),
  /** File of the file device (default a temporary file removed at the end); never shown in reports. */
  path: name().optional(),
  /** Compression of each slot: `"none"` (default), `"deflate"` or `"lz4"`. */
  compression: oneOf(SWAP_COMPRESSION_NAMES).default('none'),
  /** fsync policy of the file device: `"never"` (default) or `"always"`. */
  fsync: oneOf(['never', 'always'] as const).default('never'),
  /** Eviction policy: `"clock"` (default), `"lru"` or `"random"`. */
  policy: oneOf(SWAP_POLICY_NAMES).default('clock'),
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
  if (s.path !== undefined && s.device !== 'file') {
    ctx.addIssue({ code: 'custom', path: ['path'], message: 'applies to device "file" only' });
  }
}, whenValid);

/** A validated `machine.swap`. */
export type SwapConfig = z.output<typeof SwapConfigSchema>;
/** A validated `machine.swap.faults`. */
export type SwapFaults = z.output<typeof SwapFaultsSchema>;
/** Name of an eviction policy. */
export type SwapPolicyName = (typeof SWAP_POLICY_NAMES)[number];
/** Name of a swap device. */
export type SwapDeviceName = (typeof SWAP_DEVICE_NAMES)[number];
/** Name of a compression. */
export type SwapCompressionName = (typeof SWAP_COMPRESSION_NAMES)[number];
