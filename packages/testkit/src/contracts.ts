import { INVALID_MFN, type DedupHost, type DedupIndex, type EvictionPolicy, type Mfn } from '@pagevisor/types';

/**
 * A broken promise of the part under test, seen by the kit as the host calls it. Thrown from
 * inside a hypervisor operation, it ends the sequence there: the reference-model check names the
 * step.
 */
export class ContractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContractError';
  }
}

/**
 * `part` behind a proxy that runs `overrides` in place of its members of those names and passes
 * everything else through to the part itself (methods bound to it, so private fields work).
 */
function intercept<T extends object>(part: T, overrides: Partial<Record<PropertyKey, unknown>>): T {
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(part, {
    get(target, prop) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop];
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      let f = bound.get(prop);
      if (f === undefined) {
        f = (value as (...args: unknown[]) => unknown).bind(target);
        bound.set(prop, f);
      }
      return f;
    },
  });
}

/**
 * The dedup strategy `part` with what `DedupIndex` asks of it checked as the host calls it:
 * `lookup` returns INVALID_MFN or a live frame (not free) whose content equals the page looked up
 * (the strategy's full compare), and after `remove(mfn)` the strategy no longer `contains` it (the
 * zero frame aside, whose removal a strategy may ignore).
 */
export function checkedDedup(part: DedupIndex, plugin: string): DedupIndex {
  let host: DedupHost | undefined;
  const broken = (what: string): never => {
    throw new ContractError(`dedup plugin "${plugin}": ${what}`);
  };
  return intercept(part, {
    attach(h: DedupHost): void {
      host = h;
      part.attach(h);
    },
    lookup(page: Uint8Array, hash: number, dom: Parameters<DedupIndex['lookup']>[2]): Mfn {
      const mfn = part.lookup(page, hash, dom);
      if (mfn === INVALID_MFN || host === undefined) return mfn;
      const frames = host.frames.totalFrames;
      if (!(Number.isInteger(mfn) && mfn >= 0 && mfn < frames)) broken(`lookup returned ${String(mfn)}, not INVALID_MFN nor a frame of the ${frames} of the machine`);
      if (host.frames.isFree(mfn)) broken(`lookup returned frame ${mfn}, which is free`);
      if (!host.memory.frameEquals(mfn, page)) broken(`lookup returned frame ${mfn}, whose content differs from the page looked up (hash ${hash})`);
      return mfn;
    },
    remove(mfn: Mfn): void {
      part.remove(mfn);
      if (host !== undefined && mfn !== host.zeroMfn && part.contains(mfn)) broken(`still contains frame ${mfn} after remove(${mfn}): its content is about to change or it is being freed`);
    },
  });
}

/**
 * The eviction policy `part` with what `EvictionPolicy` asks of it checked as the host calls it:
 * `victim()` returns a frame inserted and not removed since, and INVALID_MFN exactly when none is;
 * `size` is the number of such frames.
 */
export function checkedPolicy(part: EvictionPolicy, plugin: string): EvictionPolicy {
  const tracked = new Set<number>();
  const given = new Set<number>();
  const broken = (what: string): never => {
    throw new ContractError(`eviction-policy plugin "${plugin}": ${what}`);
  };
  const sizeNow = (): number => {
    const n = part.size;
    if (n !== tracked.size) broken(`size is ${n}, but ${tracked.size} frames are tracked (inserted and not removed since)`);
    return n;
  };
  return intercept(part, {
    insert(mfn: Mfn): void {
      part.insert(mfn);
      tracked.add(mfn);
      given.add(mfn);
    },
    remove(mfn: Mfn): void {
      part.remove(mfn);
      tracked.delete(mfn);
    },
    reset(): void {
      part.reset();
      tracked.clear();
    },
    victim(): Mfn {
      const v = part.victim();
      if (v === INVALID_MFN) {
        if (tracked.size > 0) broken(`victim() returned INVALID_MFN with ${tracked.size} frames tracked`);
      } else if (!tracked.has(v)) {
        broken(`victim() returned frame ${String(v)}, which ${given.has(v) ? 'was removed since it was inserted' : 'it was never given'} (${tracked.size} frames tracked)`);
      }
      return v;
    },
    get size(): number {
      return sizeNow();
    },
  });
}
