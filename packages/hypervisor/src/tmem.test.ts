import { asDomId, HypervisorError, PAGE_SIZE, type ErrnoName } from '@pagevisor/types';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Tmem, TMEM_MAX_POOLS_PER_DOMAIN, type TmemOid, type TmemOptions } from './tmem.js';

const D1 = asDomId(1);
const D2 = asDomId(2);
const OID: TmemOid = [1, 2, 3];
const OID2: TmemOid = [1, 2, 4];

/** A page of content `c`: distinct c give distinct pages, c = 0 is all zeros. */
function page(c: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  if (c === 0) return p;
  for (let i = 0; i < PAGE_SIZE; i++) p[i] = (c * 131 + i * 7 + (i >> 8)) & 0xff;
  p[0] = c & 0xff;
  p[1] = c >> 8;
  return p;
}

/** A page of content `c` that compresses well (long runs). */
function runsPage(c: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i++) p[i] = (c + (i >> 9)) & 0xff;
  return p;
}

let live: Tmem[] = [];
function tmem(options: TmemOptions): Tmem {
  const t = new Tmem(options);
  live.push(t);
  return t;
}

afterEach(() => {
  for (const t of live) expect(t.audit()).toEqual([]);
  live = [];
});

function get(t: Tmem, dom = D1, pool = 0, oid = OID, index = 0): Uint8Array | undefined {
  const out = new Uint8Array(PAGE_SIZE);
  return t.getPage(dom, pool, oid, index, out) ? out : undefined;
}

/** Expects `fn` to throw HypervisorError `errno` of `op` and to change neither stats nor pages. */
function expectRefused(t: Tmem, errno: ErrnoName, op: string, fn: () => unknown): void {
  const before = JSON.stringify([t.stats(), t.domainPages(D1), t.domainPages(D2), t.domainPools(D1), t.domainPools(D2)]);
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(HypervisorError);
  const err = thrown as HypervisorError;
  expect(err.errnoName).toBe(errno);
  expect(err.op).toBe(op);
  expect(JSON.stringify([t.stats(), t.domainPages(D1), t.domainPages(D2), t.domainPools(D1), t.domainPools(D2)])).toBe(before);
  expect(t.audit()).toEqual([]);
}

describe('Tmem', () => {
  it('round-trips a page through a persistent pool and keeps it on get', () => {
    const t = tmem({ pages: 8 });
    const pool = t.newPool(D1, true);
    expect(pool).toBe(0);
    expect(t.putPage(D1, pool, OID, 7, page(5))).toBe(true);
    expect(get(t, D1, pool, OID, 7)).toEqual(page(5));
    expect(get(t, D1, pool, OID, 7)).toEqual(page(5));
    expect(get(t, D1, pool, OID, 8)).toBeUndefined();
    expect(get(t, D1, pool, OID2, 7)).toBeUndefined();
    const s = t.stats();
    expect(s).toMatchObject({ pools: 1, persistentPages: 1, ephemeralPages: 0, puts: 1, gets: 4, getHits: 2, slotsUsed: 1 });
    expect(s.bytesStored).toBe(PAGE_SIZE);
    expect(t.domainPages(D1)).toBe(1);
  });

  it('round-trips a page through an ephemeral pool, and a get is exclusive', () => {
    const t = tmem({ pages: 8 });
    const pool = t.newPool(D1, false);
    expect(t.putPage(D1, pool, OID, 0, page(9))).toBe(true);
    expect(t.stats().ephemeralPages).toBe(1);
    expect(get(t, D1, pool)).toEqual(page(9));
    expect(get(t, D1, pool)).toBeUndefined();
    expect(t.stats()).toMatchObject({ ephemeralPages: 0, slotsUsed: 0, gets: 2, getHits: 1 });
  });

  it('leaves `out` untouched on a miss and copies (no aliasing) on put and get', () => {
    const t = tmem({ pages: 4 });
    t.newPool(D1, true);
    const src = page(3);
    t.putPage(D1, 0, OID, 0, src);
    src.fill(0xee);
    const out = new Uint8Array(PAGE_SIZE).fill(0x55);
    expect(t.getPage(D1, 0, OID, 1, out)).toBe(false);
    expect(out.every((b) => b === 0x55)).toBe(true);
    expect(t.getPage(D1, 0, OID, 0, out)).toBe(true);
    expect(out).toEqual(page(3));
    out.fill(1);
    expect(get(t)).toEqual(page(3));
  });

  it('accepts unaligned page views and still de-duplicates them', () => {
    const t = tmem({ pages: 4 });
    t.newPool(D1, true);
    const backing = new Uint8Array(PAGE_SIZE + 1);
    backing.set(page(4), 1);
    expect(t.putPage(D1, 0, OID, 0, backing.subarray(1))).toBe(true);
    expect(t.putPage(D1, 0, OID, 1, page(4))).toBe(true);
    expect(t.stats()).toMatchObject({ slotsUsed: 1, dedupHits: 1 });
    const out = new Uint8Array(PAGE_SIZE + 3);
    expect(t.getPage(D1, 0, OID, 0, out.subarray(3))).toBe(true);
    expect(out.subarray(3)).toEqual(page(4));
  });

  it('takes a persistent put that replaces a page sharing its slot with ephemeral pages only, evicting them', () => {
    // 2 slots: persistent A at key 0 shares its slot with an ephemeral copy; persistent B fills the other.
    const t = tmem({ pages: 2 });
    const persist = t.newPool(D1, true);
    const eph = t.newPool(D1, false);
    expect(t.putPage(D1, persist, OID, 0, page(1))).toBe(true);
    expect(t.putPage(D1, eph, OID, 0, page(1))).toBe(true);
    expect(t.putPage(D1, persist, OID, 1, page(2))).toBe(true);
    // After the put the persistent contents are pages 3 and 2: two slots, they fit.
    expect(t.putPage(D1, persist, OID, 0, page(3))).toBe(true);
    expect(get(t, D1, persist, OID, 0)).toEqual(page(3));
    expect(get(t, D1, persist, OID, 1)).toEqual(page(2));
    expect(get(t, D1, eph, OID, 0)).toBeUndefined(); // evicted to make the room
    expect(t.stats()).toMatchObject({ persistentPages: 2, ephemeralPages: 0, slotsUsed: 2, evictions: 1 });
    expect(t.audit()).toEqual([]);
    // A persistent page sharing its slot with another persistent page frees nothing: still ENOSPC.
    expect(t.putPage(D1, persist, OID, 2, page(3))).toBe(true);
    expect(() => t.putPage(D1, persist, OID, 0, page(4))).toThrow(/ENOSPC|persistent/);
    expect(get(t, D1, persist, OID, 0)).toEqual(page(3));
    expect(t.audit()).toEqual([]);
  });

  it('replaces the page at an existing key', () => {
    const t = tmem({ pages: 4 });
    t.newPool(D1, true);
    t.newPool(D1, false);
    for (const pool of [0, 1]) {
      expect(t.putPage(D1, pool, OID, 1, page(1))).toBe(true);
      expect(t.putPage(D1, pool, OID, 1, page(2))).toBe(true);
      expect(t.domainPages(D1)).toBe(pool + 1);
    }
    expect(t.stats()).toMatchObject({ persistentPages: 1, ephemeralPages: 1, slotsUsed: 1, puts: 4 });
    expect(get(t, D1, 0, OID, 1)).toEqual(page(2));
    expect(get(t, D1, 1, OID, 1)).toEqual(page(2));
  });

  it('replaces a persistent page in place when the store is full', () => {
    const t = tmem({ pages: 2 });
    t.newPool(D1, true);
    t.putPage(D1, 0, OID, 0, page(1));
    t.putPage(D1, 0, OID, 1, page(2));
    expect(t.putPage(D1, 0, OID, 1, page(3))).toBe(true);
    expect(get(t, D1, 0, OID, 0)).toEqual(page(1));
    expect(get(t, D1, 0, OID, 1)).toEqual(page(3));
    expect(t.stats()).toMatchObject({ slotsUsed: 2, evictions: 0, persistentPages: 2 });
  });

  it('flushes pages and objects', () => {
    const t = tmem({ pages: 16 });
    t.newPool(D1, true);
    for (let i = 0; i < 4; i++) t.putPage(D1, 0, OID, i, page(i + 1));
    t.putPage(D1, 0, OID2, 0, page(10));
    expect(t.flushPage(D1, 0, OID, 2)).toBe(true);
    expect(t.flushPage(D1, 0, OID, 2)).toBe(false);
    expect(get(t, D1, 0, OID, 2)).toBeUndefined();
    expect(t.flushObject(D1, 0, OID)).toBe(3);
    expect(t.flushObject(D1, 0, OID)).toBe(0);
    expect(get(t, D1, 0, OID, 0)).toBeUndefined();
    expect(get(t, D1, 0, OID2, 0)).toEqual(page(10));
    expect(t.stats()).toMatchObject({ flushes: 4, persistentPages: 1, slotsUsed: 1 });
  });

  it('destroys a pool with its pages and reuses the lowest free id', () => {
    const t = tmem({ pages: 16 });
    expect(t.newPool(D1, true)).toBe(0);
    expect(t.newPool(D1, false)).toBe(1);
    expect(t.newPool(D1, true)).toBe(2);
    t.putPage(D1, 1, OID, 0, page(1));
    t.putPage(D1, 1, OID, 1, page(2));
    t.putPage(D1, 2, OID, 0, page(3));
    t.destroyPool(D1, 1);
    expect(t.domainPools(D1)).toEqual([0, 2]);
    expect(t.stats()).toMatchObject({ pools: 2, ephemeralPages: 0, persistentPages: 1, slotsUsed: 1 });
    expect(t.newPool(D1, true)).toBe(1);
    expect(get(t, D1, 1, OID, 0)).toBeUndefined();
    expect(get(t, D1, 2, OID, 0)).toEqual(page(3));
  });

  it('limits a domain to 16 pools (ENOSPC), each domain on its own', () => {
    const t = tmem({ pages: 4 });
    for (let i = 0; i < TMEM_MAX_POOLS_PER_DOMAIN; i++) expect(t.newPool(D1, i % 2 === 0)).toBe(i);
    expectRefused(t, 'ENOSPC', 'tmem_new_pool', () => t.newPool(D1, true));
    expect(t.newPool(D2, false)).toBe(0);
    t.destroyPool(D1, 5);
    expect(t.newPool(D1, true)).toBe(5);
  });

  it('refuses bad arguments with EINVAL and changes nothing', () => {
    const t = tmem({ pages: 4 });
    t.newPool(D1, true);
    t.putPage(D1, 0, OID, 0, page(1));
    const good = new Uint8Array(PAGE_SIZE);
    const badOids = [[1, 2], [1, 2, 3, 4], [-1, 0, 0], [0, 1.5, 0], [0, 0, 2 ** 53], [0, Number.NaN, 0]] as unknown as TmemOid[];
    for (const oid of badOids) {
      expectRefused(t, 'EINVAL', 'tmem_put_page', () => t.putPage(D1, 0, oid, 0, page(2)));
      expectRefused(t, 'EINVAL', 'tmem_get_page', () => t.getPage(D1, 0, oid, 0, good));
      expectRefused(t, 'EINVAL', 'tmem_flush_page', () => t.flushPage(D1, 0, oid, 0));
      expectRefused(t, 'EINVAL', 'tmem_flush_object', () => t.flushObject(D1, 0, oid));
    }
    for (const index of [-1, 2 ** 32, 0.5, Number.NaN]) {
      expectRefused(t, 'EINVAL', 'tmem_put_page', () => t.putPage(D1, 0, OID, index, page(2)));
      expectRefused(t, 'EINVAL', 'tmem_get_page', () => t.getPage(D1, 0, OID, index, good));
      expectRefused(t, 'EINVAL', 'tmem_flush_page', () => t.flushPage(D1, 0, OID, index));
    }
    for (const pool of [0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectRefused(t, 'EINVAL', 'tmem_put_page', () => t.putPage(D1, pool, OID, 0, page(2)));
      expectRefused(t, 'EINVAL', 'tmem_destroy_pool', () => t.destroyPool(D1, pool));
    }
    expectRefused(t, 'EINVAL', 'tmem_put_page', () => t.putPage(D1, 0, OID, 0, new Uint8Array(PAGE_SIZE - 1)));
    expectRefused(t, 'EINVAL', 'tmem_put_page', () => t.putPage(D1, 0, OID, 0, new Uint8Array(PAGE_SIZE + 1)));
    expectRefused(t, 'EINVAL', 'tmem_get_page', () => t.getPage(D1, 0, OID, 0, new Uint8Array(PAGE_SIZE - 1)));
    expectRefused(t, 'EINVAL', 'tmem_new_pool', () => t.newPool(asDomId(-1), true));
    expectRefused(t, 'EINVAL', 'tmem_new_pool', () => t.newPool(asDomId(0x7ff0), true));
    expect(get(t)).toEqual(page(1));
    expect(t.stats().puts).toBe(1);
  });

  it('refuses pools a domain does not have with ENOENT and changes nothing', () => {
    const t = tmem({ pages: 4 });
    t.newPool(D1, true);
    t.putPage(D1, 0, OID, 0, page(1));
    const out = new Uint8Array(PAGE_SIZE);
    for (const pool of [1, 15, 16, -1]) {
      expectRefused(t, 'ENOENT', 'tmem_put_page', () => t.putPage(D1, pool, OID, 0, page(2)));
      expectRefused(t, 'ENOENT', 'tmem_get_page', () => t.getPage(D1, pool, OID, 0, out));
      expectRefused(t, 'ENOENT', 'tmem_flush_page', () => t.flushPage(D1, pool, OID, 0));
      expectRefused(t, 'ENOENT', 'tmem_flush_object', () => t.flushObject(D1, pool, OID));
      expectRefused(t, 'ENOENT', 'tmem_destroy_pool', () => t.destroyPool(D1, pool));
    }
  });

  it('refuses a persistent put with ENOSPC when full and changes nothing', () => {
    const t = tmem({ pages: 3 });
    t.newPool(D1, true);
    t.newPool(D1, false);
    for (let i = 0; i < 3; i++) expect(t.putPage(D1, 0, OID, i, page(i + 1))).toBe(true);
    // Identical content still fits: it shares a slot.
    expect(t.putPage(D1, 0, OID, 9, page(2))).toBe(true);
    // An ephemeral page sharing a persistent page's slot: evicting it would free nothing, so it stays.
    expect(t.putPage(D1, 1, OID, 0, page(1))).toBe(true);
    expectRefused(t, 'ENOSPC', 'tmem_put_page', () => t.putPage(D1, 0, OID, 3, page(4)));
    // A replace whose old content is shared cannot reuse the old slot either.
    expectRefused(t, 'ENOSPC', 'tmem_put_page', () => t.putPage(D1, 0, OID, 9, page(4)));
    expect(t.stats()).toMatchObject({ ephemeralPages: 1, evictions: 0 });
    // An ephemeral put is refused with false; an ephemeral page sharing a persistent slot is no room.
    expect(t.putPage(D1, 1, OID, 1, page(5))).toBe(false);
    expect(t.putPage(D1, 1, OID, 0, page(6))).toBe(false);
    expect(get(t, D1, 1, OID, 0)).toBeUndefined();
    for (let i = 0; i < 3; i++) expect(get(t, D1, 0, OID, i)).toEqual(page(i + 1));
    expect(get(t, D1, 0, OID, 9)).toEqual(page(2));
    expect(t.stats()).toMatchObject({ puts: 7, putsRefused: 2, evictions: 0, slotsUsed: 3 });
  });

  it('evicts the least recently used ephemeral pages under pressure, never persistent ones', () => {
    const t = tmem({ pages: 4 });
    t.newPool(D1, true);
    t.newPool(D1, false);
    t.newPool(D2, false);
    t.putPage(D1, 0, OID, 0, page(100));
    t.putPage(D1, 1, OID, 0, page(1)); // oldest ephemeral
    t.putPage(D2, 0, OID, 0, page(2));
    t.putPage(D1, 1, OID, 1, page(3));
    expect(t.stats().slotsUsed).toBe(4);
    // A new ephemeral page evicts the oldest ephemeral page, of whichever domain.
    expect(t.putPage(D2, 0, OID, 1, page(4))).toBe(true);
    expect(get(t, D1, 1, OID, 0)).toBeUndefined();
    expect(t.stats().evictions).toBe(1);
    // A persistent put evicts too, next the oldest (domain 2's first page).
    expect(t.putPage(D1, 0, OID, 1, page(101))).toBe(true);
    expect(get(t, D2, 0, OID, 0)).toBeUndefined();
    expect(t.putPage(D1, 0, OID, 2, page(102))).toBe(true);
    expect(t.putPage(D1, 0, OID, 3, page(103))).toBe(true);
    expect(t.stats()).toMatchObject({ ephemeralPages: 0, persistentPages: 4, evictions: 4 });
    for (let i = 0; i < 4; i++) expect(get(t, D1, 0, OID, i)).toEqual(page(100 + i));
    expectRefused(t, 'ENOSPC', 'tmem_put_page', () => t.putPage(D1, 0, OID, 4, page(104)));
    expect(t.putPage(D2, 0, OID, 9, page(9))).toBe(false);
  });

  it('refreshes an ephemeral page on replace, so it is evicted after older ones', () => {
    const t = tmem({ pages: 2 });
    t.newPool(D1, false);
    t.putPage(D1, 0, OID, 0, page(1));
    t.putPage(D1, 0, OID, 1, page(2));
    t.putPage(D1, 0, OID, 0, page(3)); // in place: sole owner of its slot
    t.putPage(D1, 0, OID, 2, page(4));
    expect(get(t, D1, 0, OID, 1)).toBeUndefined();
    expect(get(t, D1, 0, OID, 0)).toEqual(page(3));
    expect(get(t, D1, 0, OID, 2)).toEqual(page(4));
  });

  it('evicts past ephemeral pages whose slot a persistent page shares', () => {
    const t = tmem({ pages: 2 });
    t.newPool(D1, true);
    t.newPool(D1, false);
    t.putPage(D1, 1, OID, 0, page(1)); // shares with the persistent page below: evicting it frees nothing
    t.putPage(D1, 0, OID, 0, page(1));
    t.putPage(D1, 1, OID, 1, page(2));
    expect(t.putPage(D1, 0, OID, 1, page(3))).toBe(true);
    expect(t.stats()).toMatchObject({ evictions: 2, ephemeralPages: 0, slotsUsed: 2 });
    expect(get(t, D1, 0, OID, 0)).toEqual(page(1));
  });

  it('stores identical pages once (dedup)', () => {
    const t = tmem({ pages: 8 });
    t.newPool(D1, true);
    t.newPool(D2, false);
    t.putPage(D1, 0, OID, 0, page(7));
    t.putPage(D1, 0, OID, 1, page(7));
    t.putPage(D2, 0, OID2, 5, page(7));
    expect(t.stats()).toMatchObject({ slotsUsed: 1, dedupHits: 2, bytesStored: PAGE_SIZE });
    t.flushPage(D1, 0, OID, 0);
    expect(get(t, D2, 0, OID2, 5)).toEqual(page(7));
    expect(get(t, D1, 0, OID, 1)).toEqual(page(7));
    expect(t.stats().slotsUsed).toBe(1);
  });

  it.each(['lz4', 'deflate'] as const)('round-trips pages with %s compression and stores fewer bytes', (compression) => {
    const t = tmem({ pages: 8, compression });
    t.newPool(D1, true);
    for (let i = 0; i < 6; i++) t.putPage(D1, 0, OID, i, i < 3 ? runsPage(i + 1) : page(i));
    for (let i = 0; i < 6; i++) expect(get(t, D1, 0, OID, i)).toEqual(i < 3 ? runsPage(i + 1) : page(i));
    const s = t.stats();
    expect(s.slotsUsed).toBe(6);
    expect(s.bytesStored).toBeLessThan(6 * PAGE_SIZE);
  });

  it('keeps domains apart: pool ids are per domain', () => {
    const t = tmem({ pages: 8 });
    t.newPool(D1, true);
    t.putPage(D1, 0, OID, 0, page(1));
    const out = new Uint8Array(PAGE_SIZE);
    expectRefused(t, 'ENOENT', 'tmem_get_page', () => t.getPage(D2, 0, OID, 0, out));
    expectRefused(t, 'ENOENT', 'tmem_flush_object', () => t.flushObject(D2, 0, OID));
    expectRefused(t, 'ENOENT', 'tmem_destroy_pool', () => t.destroyPool(D2, 0));
    expect(t.newPool(D2, true)).toBe(0);
    expect(get(t, D2, 0, OID, 0)).toBeUndefined();
    expect(t.flushObject(D2, 0, OID)).toBe(0);
    t.putPage(D2, 0, OID, 0, page(2));
    expect(get(t, D1, 0, OID, 0)).toEqual(page(1));
    expect(get(t, D2, 0, OID, 0)).toEqual(page(2));
    expect([t.domainPages(D1), t.domainPages(D2)]).toEqual([1, 1]);
  });

  it('destroys every pool of a destroyed domain', () => {
    const t = tmem({ pages: 8 });
    t.newPool(D1, true);
    t.newPool(D1, false);
    t.newPool(D2, true);
    t.putPage(D1, 0, OID, 0, page(1));
    t.putPage(D1, 1, OID, 0, page(2));
    t.putPage(D2, 0, OID, 0, page(1));
    t.domainDestroyed(D1);
    t.domainDestroyed(asDomId(9));
    expect(t.domainPools(D1)).toEqual([]);
    expect(t.domainPages(D1)).toBe(0);
    expect(t.stats()).toMatchObject({ pools: 1, persistentPages: 1, ephemeralPages: 0, slotsUsed: 1 });
    expect(get(t, D2, 0, OID, 0)).toEqual(page(1));
    expect(t.newPool(D1, false)).toBe(0);
    expect(get(t, D1, 0, OID, 0)).toBeUndefined();
  });

  it('refuses bad options with EINVAL', () => {
    for (const options of [{ pages: 0 }, { pages: 1.5 }, { pages: -3 }, { pages: 4, compression: 'zstd' }] as TmemOptions[]) {
      expect(() => new Tmem(options)).toThrow(expect.objectContaining({ errno: 22, op: 'tmem_create' }));
    }
  });

  it('uses the given page hash', () => {
    let calls = 0;
    const t = tmem({ pages: 4, hashPage: (p: Uint8Array) => (calls++, p[0]!) });
    t.newPool(D1, true);
    t.putPage(D1, 0, OID, 0, page(1));
    // Same hash, different content: compare keeps them apart.
    const other = page(2);
    other[0] = 1;
    t.putPage(D1, 0, OID, 1, other);
    expect(t.stats()).toMatchObject({ slotsUsed: 2, dedupHits: 0 });
    expect(get(t, D1, 0, OID, 1)).toEqual(other);
    expect(calls).toBeGreaterThan(0);
  });

  it('audit reports a broken invariant', () => {
    const t = new Tmem({ pages: 4 });
    t.newPool(D1, false);
    t.putPage(D1, 0, OID, 0, page(1));
    (t as unknown as { ephemeralPages: number }).ephemeralPages = 5;
    expect(t.audit().join('\n')).toMatch(/ephemeralPages 5, pools hold 1/);
  });
});

/** Model key: pool kind (0 persistent, 1 ephemeral), domain, object, index. */
type Op =
  | { readonly kind: 'put'; readonly dom: number; readonly pool: number; readonly obj: number; readonly index: number; readonly content: number }
  | { readonly kind: 'get'; readonly dom: number; readonly pool: number; readonly obj: number; readonly index: number }
  | { readonly kind: 'flushPage'; readonly dom: number; readonly pool: number; readonly obj: number; readonly index: number }
  | { readonly kind: 'flushObject'; readonly dom: number; readonly pool: number; readonly obj: number }
  | { readonly kind: 'recreate'; readonly dom: number; readonly pool: number };

describe('Tmem against a Map model', () => {
  it('persistent pages always come back exactly, ephemeral ones exactly or not at all', () => {
    const dom = fc.integer({ min: 1, max: 2 });
    const pool = fc.integer({ min: 0, max: 1 });
    const obj = fc.integer({ min: 0, max: 2 });
    const index = fc.integer({ min: 0, max: 3 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('put' as const), dom, pool, obj, index, content: fc.integer({ min: 0, max: 9 }) }) },
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('get' as const), dom, pool, obj, index }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('flushPage' as const), dom, pool, obj, index }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('flushObject' as const), dom, pool, obj }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('recreate' as const), dom, pool }) },
    );
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 120 }),
        fc.integer({ min: 2, max: 6 }),
        fc.constantFrom('none' as const, 'lz4' as const),
        (ops, pages, compression) => {
          const t = new Tmem({ pages, compression });
          // Pool 0 of each domain is persistent, pool 1 ephemeral.
          const model = new Map<string, number>();
          for (const d of [1, 2]) {
            t.newPool(asDomId(d), true);
            t.newPool(asDomId(d), false);
          }
          const keyOf = (d: number, p: number, o: number, i: number) => `${d}/${p}/${o}/${i}`;
          const persistentContents = () => {
            const set = new Set<number>();
            for (const [k, c] of model) if (k.split('/')[1] === '0') set.add(c);
            return set;
          };
          const out = new Uint8Array(PAGE_SIZE);
          for (const o of ops) {
            const d = asDomId(o.dom);
            const oid: TmemOid = [o.dom, 7, 'obj' in o ? o.obj : 0];
            if (o.kind === 'put') {
              const k = keyOf(o.dom, o.pool, o.obj, o.index);
              const held = persistentContents();
              const full = held.size >= pages && !held.has(o.content);
              let stored: boolean;
              try {
                stored = t.putPage(d, o.pool, oid, o.index, page(o.content));
              } catch (e) {
                expect(o.pool).toBe(0);
                expect((e as HypervisorError).errnoName).toBe('ENOSPC');
                // Refused only when distinct persistent contents fill the store and the key's own page shares its slot.
                expect(full).toBe(true);
                const old = model.get(k);
                if (old !== undefined) expect([...model.values()].filter((c) => c === old).length).toBeGreaterThan(1);
                continue;
              }
              if (stored) model.set(k, o.content);
              else {
                expect(o.pool).toBe(1);
                expect(full).toBe(true);
                model.delete(k);
              }
            } else if (o.kind === 'get') {
              const k = keyOf(o.dom, o.pool, o.obj, o.index);
              const found = t.getPage(d, o.pool, oid, o.index, out);
              const want = model.get(k);
              if (o.pool === 0) {
                expect(found).toBe(want !== undefined);
                if (found) expect(out).toEqual(page(want!));
              } else {
                if (want === undefined) expect(found).toBe(false);
                if (found) expect(out).toEqual(page(want!));
                model.delete(k);
              }
            } else if (o.kind === 'flushPage') {
              const k = keyOf(o.dom, o.pool, o.obj, o.index);
              const had = t.flushPage(d, o.pool, oid, o.index);
              if (o.pool === 0) expect(had).toBe(model.has(k));
              else if (had) expect(model.has(k)).toBe(true);
              model.delete(k);
            } else if (o.kind === 'flushObject') {
              const prefix = `${o.dom}/${o.pool}/${o.obj}/`;
              const keys = [...model.keys()].filter((k) => k.startsWith(prefix));
              const n = t.flushObject(d, o.pool, oid);
              if (o.pool === 0) expect(n).toBe(keys.length);
              else expect(n).toBeLessThanOrEqual(keys.length);
              for (const k of keys) model.delete(k);
            } else {
              t.destroyPool(d, o.pool);
              expect(t.newPool(d, o.pool === 0)).toBe(o.pool);
              for (const k of [...model.keys()]) if (k.startsWith(`${o.dom}/${o.pool}/`)) model.delete(k);
            }
            // Ephemeral pages the model lists may be gone; never more than it lists.
            for (const dd of [1, 2]) {
              let persistent = 0;
              let ephemeral = 0;
              for (const k of model.keys()) {
                const [kd, kp] = k.split('/');
                if (kd !== String(dd)) continue;
                if (kp === '0') persistent++;
                else ephemeral++;
              }
              const pagesHeld = t.domainPages(asDomId(dd));
              expect(pagesHeld).toBeGreaterThanOrEqual(persistent);
              expect(pagesHeld).toBeLessThanOrEqual(persistent + ephemeral);
            }
            const s = t.stats();
            expect(s.slotsUsed).toBeLessThanOrEqual(pages);
            expect(s.persistentPages).toBe([...model.keys()].filter((k) => k.split('/')[1] === '0').length);
            expect(t.audit()).toEqual([]);
          }
          // Every persistent page comes back at the end.
          for (const [k, c] of model) {
            const [kd, kp, ko, ki] = k.split('/').map(Number) as [number, number, number, number];
            if (kp !== 0) continue;
            expect(t.getPage(asDomId(kd), 0, [kd, 7, ko], ki, out)).toBe(true);
            expect(out).toEqual(page(c));
          }
        },
      ),
      { numRuns: 200, seed: 0x7e3, endOnFailure: true },
    );
  });
});
