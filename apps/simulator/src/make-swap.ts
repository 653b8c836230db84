import type { SwapOptions } from '@pagevisor/hypervisor';
import { createPart, mixSeed, type DomId, type EvictionPolicy, type SwapBackend, type SwapDevice } from '@pagevisor/types';
import { specOf, type SwapConfig } from '@pagevisor/workloads';
import type { BuiltPart, PartsContext } from './make-parts.js';
import { loadPlugin, type LoadedPlugin } from './plugins.js';

/** What {@link makeSwap} needs of the run beyond the parts' context. */
export interface SwapContext extends PartsContext {
  /** Guest pages over every guest: the shared area's default slots. */
  readonly guestPages: number;
  /** Pages of the largest guest: each per-domain area's default slots. */
  readonly largestGuestPages: number;
}

/** The hypervisor's swap options for a scenario's `machine.swap`, the plugins behind them, and how to release the devices. */
export interface SwapSetup {
  /** Pass as `HypervisorOptions.swap`. */
  readonly options: SwapOptions;
  /** The eviction policy and the plugins of the backend and the device. */
  readonly policy: BuiltPart<EvictionPolicy, 'eviction-policy'>;
  readonly backend: LoadedPlugin<'swap-backend'>;
  readonly device: LoadedPlugin<'swap-device'>;
  /** Closes every device (a temporary file goes with it); call once the run is over. */
  close(): void;
}

/**
 * Builds the swap of `config` from its plugins: the eviction policy, and the area(s) the backend
 * builds over the device: `shared` → one area (identical pages share a slot); `per-domain` → a
 * factory giving each domain its own area (no slot sharing) and device. The scenario's
 * `compression` goes to the backend's options, `path`, `fsync` and `faults` to the device's.
 * @throws PluginError naming a plugin that cannot be loaded or refuses its options (the shared
 *   area is built here; a per-domain area when its domain is created).
 */
export async function makeSwap(config: SwapConfig, ctx: SwapContext): Promise<SwapSetup> {
  const { guestPages, largestGuestPages, ...context } = ctx;
  const policySpec = specOf(config.policy);
  const backendSpec = specOf(config.backend);
  const deviceSpec = specOf(config.device);
  const [policyPlugin, backend, device] = await Promise.all([
    loadPlugin('eviction-policy', policySpec.specifier, context.baseDir),
    loadPlugin('swap-backend', backendSpec.specifier, context.baseDir),
    loadPlugin('swap-device', deviceSpec.specifier, context.baseDir),
  ]);
  const policy = createPart(policyPlugin.plugin, policyPlugin.specifier, policySpec.options, { ...context, seed: mixSeed(context.seed, 0x73776170) });
  const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  const backendOptions = { ...backendSpec.options, ...defined({ compression: config.compression }) };
  const deviceOptions = { ...deviceSpec.options, ...defined({ path: config.path, fsync: config.fsync, faults: config.faults }) };
  const devices: SwapDevice[] = [];
  const area = (slots: number, dom: DomId | undefined): SwapBackend => {
    const areaContext = { ...context, slots, dom };
    return createPart(backend.plugin, backend.specifier, backendOptions, {
      ...areaContext,
      dedup: config.mode === 'shared',
      device: () => {
        const d = createPart(device.plugin, device.specifier, deviceOptions, areaContext);
        devices.push(d);
        return d;
      },
    });
  };
  const shared = config.mode === 'shared';
  const options: SwapOptions = {
    backend: shared ? area(config.slots ?? Math.max(1, guestPages), undefined) : (dom: DomId) => area(config.slots ?? Math.max(1, largestGuestPages), dom),
    policy,
    ...(config.lowWatermark === undefined ? {} : { lowWatermark: config.lowWatermark }),
    ...(config.highWatermark === undefined ? {} : { highWatermark: config.highWatermark }),
  };
  return {
    options,
    policy: { part: policy, loaded: policyPlugin },
    backend,
    device,
    close() {
      for (const d of devices.splice(0)) d.close();
    },
  };
}
