import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SwapOptions } from '@pagevisor/hypervisor';
import { createEvictionPolicy, FaultPlan, FileSwapDevice, MemorySwapDevice, SharedSwap } from '@pagevisor/swap';
import { mixSeed, type DomId, type SwapDevice } from '@pagevisor/types';
import type { SwapConfig } from '@pagevisor/workloads';

/** What {@link makeSwap} needs of the run. */
export interface SwapContext {
  /** Machine frames (the eviction policy tracks frames below this). */
  readonly frames: number;
  /** Guest pages over every guest: the shared area's default slots. */
  readonly guestPages: number;
  /** Pages of the largest guest: each per-domain area's default slots. */
  readonly largestGuestPages: number;
  /** The scenario's seed (the random policy's and the fault plans' seeds derive from it). */
  readonly seed: number;
  /** The machine's page hash (bound once the hypervisor exists: areas hash only when storing). */
  readonly hashPage: (page: Uint8Array) => number;
}

/** The hypervisor's swap options for a scenario's `machine.swap`, and how to release the devices. */
export interface SwapSetup {
  /** Pass as `HypervisorOptions.swap`. */
  readonly options: SwapOptions;
  /** Closes every device and removes the temporary files; call once the run is over. */
  close(): void;
}

let tempFiles = 0;

/**
 * Builds the swap area(s) of `config`: `shared` → one {@link SharedSwap} (dedup on) over one
 * device; `per-domain` → a factory giving each domain its own area (dedup off) and device. A file
 * device without `path` uses a temporary file removed by `close()`; with per-domain areas each
 * domain's file is `<path>.dom<N>`. Faults (when set) get a {@link FaultPlan} per device (per-domain:
 * seeded from the plan's seed and the domain id).
 */
export function makeSwap(config: SwapConfig, ctx: SwapContext): SwapSetup {
  const devices: SwapDevice[] = [];
  const removeOnClose: string[] = [];
  const basePath = config.path ?? join(tmpdir(), `pagevisor-swap-${process.pid}-${++tempFiles}`);
  const faultsFor = (salt: number | undefined): FaultPlan | undefined => {
    if (config.faults === undefined) return undefined;
    const seed = config.faults.seed ?? 1;
    return new FaultPlan({ ...config.faults, seed: salt === undefined ? seed : mixSeed(seed, salt) });
  };
  const device = (slots: number, dom: DomId | undefined): SwapDevice => {
    const faults = faultsFor(dom);
    let d: SwapDevice;
    if (config.device === 'memory') {
      d = new MemorySwapDevice({ slots, faults });
    } else {
      const path = dom === undefined ? basePath : `${basePath}.dom${dom}`;
      if (config.path === undefined) removeOnClose.push(path);
      d = FileSwapDevice.open({ path, slots, fsync: config.fsync, faults });
    }
    devices.push(d);
    return d;
  };
  const compression = config.compression;
  const backend =
    config.mode === 'shared'
      ? new SharedSwap({ device: device(config.slots ?? Math.max(1, ctx.guestPages), undefined), hashPage: ctx.hashPage, compression })
      : (dom: DomId) =>
          new SharedSwap({ device: device(config.slots ?? Math.max(1, ctx.largestGuestPages), dom), hashPage: ctx.hashPage, compression, dedup: false });
  const policy = createEvictionPolicy(config.policy, { frames: ctx.frames, seed: mixSeed(ctx.seed, 0x73776170) });
  const options: SwapOptions = {
    backend,
    policy,
    ...(config.lowWatermark === undefined ? {} : { lowWatermark: config.lowWatermark }),
    ...(config.highWatermark === undefined ? {} : { highWatermark: config.highWatermark }),
  };
  return {
    options,
    close() {
      for (const d of devices.splice(0)) d.close();
      for (const p of removeOnClose.splice(0)) rmSync(p, { force: true });
    },
  };
}
