// Helpers of the image tests: temporary image files, distinct page contents, and a guest booted
// from an image on a real hypervisor.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HypercallClient } from '@pagevisor/hypercall-abi';
import { Hypervisor } from '@pagevisor/hypervisor';
import { asDomId, asGfn, PAGE_SIZE, Prng, type DomId } from '@pagevisor/types';
import { expect } from 'vitest';
import { SyntheticGuest, type SyntheticGuestSpec } from '../src/synthetic-guest.js';
import { ImageError } from '../src/images/image-error.js';
import type { ImageFormat } from '../src/images/image-file.js';
import { FakeHost } from './fake-host.js';

/** A temporary directory for image files; `remove()` deletes it. */
export function tempImages(): { dir: string; write(name: string, bytes: Uint8Array): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'pagevisor-images-'));
  return {
    dir,
    write(name, bytes) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      return path;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A page of random bytes determined by `seed` (distinct seeds give distinct pages). */
export function page(seed: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  new Prng(seed).fillU32(new Uint32Array(p.buffer));
  return p;
}

/** `pages` concatenated. */
export function concat(pages: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pages.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pages) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The spec of a guest booting image file `path` with nothing else to do. */
export function imageSpec(path: string, format: ImageFormat, memoryMiB = 1, zeroFraction = 0): SyntheticGuestSpec {
  return { memoryMiB, image: { id: 'none', fraction: 0, path, format }, zeroFraction, writeRatePagesPerS: 0, writeBytes: 64, wholePageWriteFraction: 0, bootPagesPerS: 1e6 };
}

/** Runs `guest` alone until it is done or failed. */
export function runGuest(guest: SyntheticGuest): void {
  for (let t = guest.nextEventNs(); t !== Infinity; t = guest.nextEventNs()) guest.step(t);
}

/** Boots a guest of `spec` on a fresh hypervisor of `frames` frames (inline dedup). */
export async function bootOnHypervisor(spec: SyntheticGuestSpec, frames = 2048, batchPages?: number) {
  const hv = await Hypervisor.create({ frames });
  const dom = hv.createDomain({ name: 'vm', maxPages: spec.memoryMiB * 256 });
  hv.setDomainMergeable(dom, true);
  const guest = new SyntheticGuest(spec, dom, 1, { memory: hv, hypercalls: new HypercallClient(hv, dom) }, batchPages === undefined ? {} : { batchPages });
  runGuest(guest);
  return { hv, dom, guest };
}

/** The whole page `gfn` of `dom`, as the guest reads it. */
export function readGuestPage(hv: Hypervisor, dom: DomId, gfn: number): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE);
  hv.readPage(dom, asGfn(gfn), 0, out, 0, PAGE_SIZE);
  return out;
}

/** Index of the first byte where `a` and `b` differ, or -1 (cheaper to report than a diff of 4096 bytes). */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * Checks that every gfn of the guest reads as `expected(gfn)` (a page, or null for zeros);
 * returns the gfns that do not.
 */
export function mismatches(hv: Hypervisor, dom: DomId, pages: number, expected: (gfn: number) => Uint8Array | null): number[] {
  const zero = new Uint8Array(PAGE_SIZE);
  const bad: number[] = [];
  for (let g = 0; g < pages; g++) {
    if (firstDifference(readGuestPage(hv, dom, g), expected(g) ?? zero) !== -1) bad.push(g);
  }
  return bad;
}

/** The ImageError `fn` throws (fails the test if it throws anything else, or nothing). */
export function refusal(fn: () => unknown): ImageError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ImageError) return e;
    throw e;
  }
  throw new Error('expected an ImageError, but nothing was thrown');
}

/** A guest booting image `path` is refused at construction with an ImageError, before any hypercall. */
export function expectNothingPopulated(path: string, format: ImageFormat): void {
  const host = new FakeHost();
  expect(() => new SyntheticGuest(imageSpec(path, format), asDomId(1), 1, { memory: host, hypercalls: host })).toThrow(ImageError);
  expect(host.populateCalls).toBe(0);
  expect(host.pages.size).toBe(0);
}
