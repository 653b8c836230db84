import { ArrayFrameTable, BuddyAllocator } from '@pagevisor/frame-allocator';
import { createMachineMemory } from '@pagevisor/machine';
import {
  asDomId,
  asGfn,
  DOMID_XEN,
  FrameFlags,
  INVALID_GFN,
  PAGE_SIZE,
  Prng,
  type DedupHost,
  type Mfn,
} from '@pagevisor/types';
import { unusedHostParts } from './fake-host.js';

/** The domain that owns the test frames. */
export const TEST_DOM = asDomId(1);

/** A host on the real machine memory and frame table, with its zero frame allocated as the hypervisor does. */
export async function machineHost(frames: number) {
  const memory = await createMachineMemory({ frames });
  const table = new ArrayFrameTable(new BuddyAllocator(frames));
  const zeroMfn = table.allocFrame(DOMID_XEN, INVALID_GFN);
  memory.zeroFrame(zeroMfn);
  table.setOwner(zeroMfn, DOMID_XEN, INVALID_GFN);
  table.setFlags(zeroMfn, FrameFlags.shared | FrameFlags.zero);
  table.addDomain(TEST_DOM, frames);
  let nextGfn = 0;
  /** Allocates a frame for TEST_DOM holding `page`. */
  const frameWith = (page: Uint8Array): Mfn => {
    const mfn = table.allocFrame(TEST_DOM, asGfn(nextGfn++));
    if (mfn < 0) throw new Error('test host out of frames');
    memory.write(mfn, 0, page, 0, PAGE_SIZE);
    return mfn;
  };
  const host: DedupHost = { ...unusedHostParts(), memory, frames: table, zeroMfn };
  return { host, memory, table, zeroMfn, frameWith };
}

/** A page of random bytes drawn from `seed`. */
export function randomPage(seed: number): Uint8Array {
  const page = new Uint8Array(PAGE_SIZE);
  new Prng(seed).fillBytes(page);
  return page;
}

/** A page of zeros but for the 32-bit number `n` at its start: distinct pages for distinct `n`. */
export function numberedPage(n: number): Uint8Array {
  const page = new Uint8Array(PAGE_SIZE);
  new DataView(page.buffer).setUint32(0, n, true);
  return page;
}
