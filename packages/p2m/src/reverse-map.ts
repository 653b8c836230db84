import {
  asDomId,
  asGfn,
  asMfn,
  HypervisorError,
  InvariantError,
  P2mType,
  type DomId,
  type Gfn,
  type Mfn,
  type ReverseMap,
} from '@pagevisor/types';
import { Int32Map } from './int32-map.js';
import type { ArrayP2mTable } from './p2m-table.js';

/** Anchor of a frame with no mappings; also the end of a node chain. */
const NIL = -1;
/** Anchors at or below this value name a frame's first list node: node = LISTED - anchor. */
const LISTED = -2;
/** Mappings a list node holds. */
export const RMAP_IDS_PER_NODE = 6;
/** Int32 words of a list node: next node, mappings held, then the mappings' ids. */
const NODE_WORDS = 2 + RMAP_IDS_PER_NODE;
/** Nodes in a list from which its frame is heavy: its ids' places are indexed. */
export const RMAP_HEAVY_NODES = 16;
/** Bytes of metadata per machine frame: its anchor. */
export const RMAP_BYTES_PER_FRAME = 4;
/** Bytes of a list node, which holds up to {@link RMAP_IDS_PER_NODE} mappings. */
export const RMAP_BYTES_PER_NODE = NODE_WORDS * 4;
/** Reverse-map ids are handed to tables in chunks of 2^12: a table takes whole chunks of ids. */
export const RMAP_ID_CHUNK_SHIFT = 12;
/** Bytes counted per chunk of the id directory (one reference). */
const BYTES_PER_CHUNK = 8;
/** Ids stay below 2^31 so that they fit an Int32Array. */
const MAX_CHUNKS = 2 ** 31 / 2 ** RMAP_ID_CHUNK_SHIFT;

/**
 * The reverse map of shared frames, object-based where it can be, as Linux finds an anonymous
 * page's mappers from its `index` rather than from a list: one Int32 anchor per machine frame.
 *
 * - A frame whose mappers all map it at the same gfn `g` (identical images, forks, pages merged
 *   at the same address in different guests) has anchor `g`: its mappers are the tables whose
 *   entry `g` is (frame, ram_shared), found by looking at that entry in each table. Adding and
 *   removing such a mapping touch nothing; the anchor may outlive the last mapper.
 * - A frame mapped at two gfns or more has its mappings' ids listed in nodes of
 *   {@link RMAP_IDS_PER_NODE} ids (an unrolled list; 32 bytes a node), its anchor naming the
 *   first node. Adding is O(1); removing finds the id in the list and fills the hole with the
 *   first node's last id. Finding is a walk, O(mappers / 6), until the list reaches
 *   {@link RMAP_HEAVY_NODES} nodes; the frame is heavy then (as Xen turns a page's list of
 *   sharers into a hash table past 256) and an index from id to place makes it O(1), at about
 *   16 bytes a mapping of heavy frames.
 * - The `countOnly` frame (the hypervisor's zero frame, which any gfn may map) keeps a count:
 *   listing hundreds of thousands of mappers would make every removal a long walk.
 *
 * The anchors may live in another table's per-frame words (the frame table's m2p of a shared
 * frame), whose owner writes them while a frame has no list: any value from -1 up is a valid,
 * possibly stale, anchor.
 *
 * A frame turns from anchored to listed when a mapping at another gfn arrives (its mappers at
 * the anchor are looked up then, O(domains)). Nothing is kept per guest frame: a gfn's id is
 * its table's `idBase` plus the gfn, ids being handed out by chunks of 2^{@link RMAP_ID_CHUNK_SHIFT}
 * with a directory mapping each chunk to its table.
 *
 * Callers add a mapping before they set the p2m entry to (frame, ram_shared) and remove it
 * while the entry still says so: that entry is how a mapping is checked in O(1).
 */
export class ArrayReverseMap implements ReverseMap {
  private readonly totalFrames: number;
  private readonly tableOf: (dom: DomId) => ArrayP2mTable | undefined;
  private readonly countOnly: number;
  private countOnlyMappings = 0;
  private readonly anchor: Int32Array;
  /** False when the anchors are another table's words (counted there). */
  private readonly ownAnchors: boolean;
  private nodes = new Int32Array(NODE_WORDS * 16);
  /** Nodes ever carved from `nodes`; those freed since are chained from `freeNode`. */
  private nodesCarved = 0;
  private freeNode = NIL;
  /** Frames whose ids are indexed in `places` (few: those with many mappers at several gfns). */
  private readonly heavy = new Set<number>();
  /** Id of a heavy frame's mapping -> the word of `nodes` that holds it. */
  private readonly places = new Int32Map();
  /** Table of each chunk of ids (undefined: free). */
  private readonly chunkTables: (ArrayP2mTable | undefined)[] = [];
  /** Registered tables, for looking up an anchored frame's mappers. */
  private readonly tables: ArrayP2mTable[] = [];
  private used = 0;

  /**
   * A reverse map for `totalFrames` machine frames. `tableOf` resolves a domain to its table
   * (registered with {@link register}); mappings of frame `countOnly` are counted, not listed
   * (-1: none such). `anchors`, when given, are per-frame words to keep the anchors in (a frame
   * table's m2p): others may write them while a frame has no list, never a value below -1.
   */
  constructor(totalFrames: number, tableOf: (dom: DomId) => ArrayP2mTable | undefined, countOnly = -1, anchors?: Int32Array) {
    if (!Number.isSafeInteger(totalFrames) || totalFrames < 0 || totalFrames > 0x7fffffff) {
      throw new RangeError(`totalFrames ${totalFrames} is not an integer in 0 .. 2^31-1`);
    }
    if (anchors !== undefined && anchors.length < totalFrames) {
      throw new RangeError(`${anchors.length} anchor words for ${totalFrames} frames`);
    }
    this.totalFrames = totalFrames;
    this.tableOf = tableOf;
    this.countOnly = countOnly;
    this.ownAnchors = anchors === undefined;
    this.anchor = anchors ?? new Int32Array(totalFrames).fill(NIL);
  }

  /** Entries in use (mappings recorded across all frames). */
  get size(): number {
    return this.used;
  }

  /** Bytes held by the reverse map's arrays: the anchors (unless lent), the list nodes and the id directory. */
  metadataBytes(): number {
    return (this.ownAnchors ? this.anchor.byteLength : 0) + this.nodes.byteLength + this.places.byteLength + this.chunkTables.length * BYTES_PER_CHUNK;
  }

  /**
   * Gives `table` a range of ids, the first free run of chunks large enough (a table of size 0
   * takes none). ENOMEM when the 2^31 ids are all taken by live tables; nothing changes then.
   */
  register(table: ArrayP2mTable): void {
    const chunks = Math.ceil(table.size / 2 ** RMAP_ID_CHUNK_SHIFT);
    const dir = this.chunkTables;
    let start = 0;
    let run = 0;
    for (let c = 0; c < dir.length && run < chunks; c++) {
      if (dir[c] === undefined) {
        if (run === 0) start = c;
        run++;
      } else run = 0;
    }
    // Not enough free chunks inside: extend from the end (reusing the trailing free run).
    if (run < chunks) start = dir.length - run;
    if (start + chunks > MAX_CHUNKS) {
      throw new HypervisorError('ENOMEM', 'createdomain', `no reverse-map ids left for d${table.dom}'s ${table.size} guest frames`);
    }
    for (let c = start; c < start + chunks; c++) dir[c] = table;
    table.idBase = start * 2 ** RMAP_ID_CHUNK_SHIFT;
    this.tables.push(table);
  }

  /** Frees `table`'s ids; it must have no shared entries left. */
  unregister(table: ArrayP2mTable): void {
    const entries = table.countOf(P2mType.ram_shared);
    if (entries !== 0) throw new InvariantError(`rmap: d${table.dom} still has ${entries} entries`);
    const dir = this.chunkTables;
    const first = table.idBase >>> RMAP_ID_CHUNK_SHIFT;
    for (let c = first; c < dir.length && dir[c] === table; c++) dir[c] = undefined;
    while (dir.length > 0 && dir[dir.length - 1] === undefined) dir.length--;
    this.tables.splice(this.tables.indexOf(table), 1);
    table.idBase = -1;
  }

  /**
   * Records that `dom`'s `gfn` maps `mfn`; called before the entry is set to (mfn, ram_shared).
   * InvariantError if the entry says so already (the mapping is recorded).
   */
  add(mfn: Mfn, dom: DomId, gfn: Gfn): void {
    this.checkMfn(mfn, 'add');
    const table = this.tableFor(dom, gfn, 'add');
    if (mapsAt(table, gfn, mfn)) {
      throw new InvariantError(`rmap add: d${dom} gfn ${gfn} already has an entry (p2m maps mfn ${table.mfn(gfn)})`);
    }
    if (mfn === this.countOnly) this.countOnlyMappings++;
    else {
      const a = this.anchor[mfn]!;
      if (a === NIL) this.anchor[mfn] = gfn;
      else if (a !== gfn) {
        if (a >= 0 && !this.listAnchored(mfn, a)) this.anchor[mfn] = gfn;
        else this.push(mfn, table.idBase + gfn);
      }
    }
    this.used++;
  }

  /**
   * Forgets that `dom`'s `gfn` maps `mfn`; called while the entry is still (mfn, ram_shared).
   * InvariantError if that mapping is not recorded.
   */
  remove(mfn: Mfn, dom: DomId, gfn: Gfn): void {
    this.checkMfn(mfn, 'remove');
    const table = this.tableFor(dom, gfn, 'remove');
    let recorded = table.type(gfn) === P2mType.ram_shared && table.mfn(gfn) === mfn;
    if (recorded && mfn !== this.countOnly) {
      const a = this.anchor[mfn]!;
      // Anchored at this gfn: nothing to take out. Listed: take the id out.
      recorded = a === gfn || (a <= LISTED && this.unlist(mfn, table.idBase + gfn));
    }
    if (!recorded) throw new InvariantError(`rmap remove: d${dom} gfn ${gfn} is not in the list of mfn ${mfn}`);
    if (mfn === this.countOnly) this.countOnlyMappings--;
    this.used--;
  }

  /** Mappings recorded for `mfn` (O(domains) for an anchored frame, O(mappers) for a listed one). */
  count(mfn: Mfn): number {
    this.checkMfn(mfn, 'count');
    if (mfn === this.countOnly) return this.countOnlyMappings;
    const a = this.anchor[mfn]!;
    let n = 0;
    if (a === NIL) return 0;
    if (a >= 0) {
      for (const t of this.tables) if (mapsAt(t, a, mfn)) n++;
      return n;
    }
    for (let node = LISTED - a; node !== NIL; node = this.nodes[node * NODE_WORDS]!) {
      n += this.nodes[node * NODE_WORDS + 1]!;
    }
    return n;
  }

  /**
   * Calls `fn` for every mapping of `mfn`. The mappings are read before the first call, so `fn`
   * may change the reverse map. The count-only frame's mappings are found by reading every table.
   */
  forEach(mfn: Mfn, fn: (dom: DomId, gfn: Gfn) => void): void {
    this.checkMfn(mfn, 'forEach');
    const doms: number[] = [];
    const gfns: number[] = [];
    const a = this.anchor[mfn]!;
    if (mfn === this.countOnly) {
      for (const t of this.tables) {
        for (let g = 0; g < t.size; g++) {
          if (mapsAt(t, g, mfn)) {
            doms.push(t.dom);
            gfns.push(g);
          }
        }
      }
    } else if (a >= 0) {
      for (const t of this.tables) {
        if (mapsAt(t, a, mfn)) {
          doms.push(t.dom);
          gfns.push(a);
        }
      }
    } else if (a <= LISTED) {
      const nodes = this.nodes;
      for (let node = LISTED - a; node !== NIL; node = nodes[node * NODE_WORDS]!) {
        const base = node * NODE_WORDS;
        for (let k = 0; k < nodes[base + 1]!; k++) {
          const id = nodes[base + 2 + k]!;
          const t = this.chunkTables[id >>> RMAP_ID_CHUNK_SHIFT]!;
          doms.push(t.dom);
          gfns.push(id - t.idBase);
        }
      }
    }
    for (let k = 0; k < doms.length; k++) fn(asDomId(doms[k]!), asGfn(gfns[k]!));
  }

  /** Machine frames with at least one mapping, in ascending order (not for the hot path). */
  frames(): Mfn[] {
    const out: Mfn[] = [];
    for (let m = 0; m < this.totalFrames; m++) {
      if ((m === this.countOnly || this.anchor[m] !== NIL) && this.count(asMfn(m)) > 0) out.push(asMfn(m));
    }
    return out;
  }

  /**
   * Broken invariants, in words (empty when sound): every ram_shared entry of every table is
   * recorded (at its frame's anchor, in its frame's list, or counted for the count-only frame);
   * every listed id names a live gfn mapping that frame shared, once; a heavy frame's ids are
   * indexed at their places, and nothing else is; node counts and the node pool add up; the
   * entries add up to {@link size}.
   */
  audit(): string[] {
    const problems: string[] = [];
    const nodes = this.nodes;
    const listed = new Map<number, number>();
    let reachable = 0;
    let heavyIds = 0;
    for (let m = 0; m < this.totalFrames; m++) {
      const a = this.anchor[m]!;
      if (a > LISTED) continue;
      if (m === this.countOnly) problems.push(`mfn ${m}: count-only frame has a list`);
      let first = true;
      for (let node = LISTED - a; node !== NIL; node = nodes[node * NODE_WORDS]!, first = false) {
        if (node >= this.nodesCarved || ++reachable > this.nodesCarved) {
          problems.push(`mfn ${m}: list runs through node ${node}, outside the pool or in a cycle`);
          break;
        }
        const base = node * NODE_WORDS;
        const n = nodes[base + 1]!;
        if (n < 1 || n > RMAP_IDS_PER_NODE || (!first && n !== RMAP_IDS_PER_NODE)) {
          problems.push(`mfn ${m}: node ${node} holds ${n} ids (${first ? 'first' : 'later'} node)`);
        }
        for (let k = 0; k < Math.min(n, RMAP_IDS_PER_NODE); k++) {
          const id = nodes[base + 2 + k]!;
          const t = id >= 0 ? this.chunkTables[id >>> RMAP_ID_CHUNK_SHIFT] : undefined;
          if (t === undefined || id - t.idBase >= t.size) problems.push(`mfn ${m}: id ${id} names no gfn of a live table`);
          else if (!mapsAt(t, id - t.idBase, m)) problems.push(`mfn ${m}: d${t.dom} gfn ${id - t.idBase} is listed but does not map it shared`);
          if (listed.has(id)) problems.push(`mfn ${m}: id ${id} listed twice`);
          listed.set(id, m);
          if (this.heavy.has(m)) {
            heavyIds++;
            if (this.places.get(id) !== base + 2 + k) problems.push(`mfn ${m}: heavy, id ${id} indexed at ${this.places.get(id)}, held at ${base + 2 + k}`);
          }
        }
      }
    }
    for (const m of this.heavy) if (this.anchor[m]! > LISTED) problems.push(`mfn ${m}: heavy without a list`);
    if (heavyIds !== this.places.size) problems.push(`${this.places.size} ids indexed, ${heavyIds} listed for heavy frames`);
    let free = 0;
    for (let node = this.freeNode; node !== NIL && free <= this.nodesCarved; node = nodes[node * NODE_WORDS]!) free++;
    if (reachable + free !== this.nodesCarved) problems.push(`${reachable} nodes in lists and ${free} free, ${this.nodesCarved} carved`);
    let entries = 0;
    let countOnly = 0;
    for (const t of this.tables) {
      for (let g = 0; g < t.size; g++) {
        if (t.type(asGfn(g)) !== P2mType.ram_shared) continue;
        entries++;
        const m = t.mfn(asGfn(g));
        if (m === this.countOnly) countOnly++;
        else if (this.anchor[m] !== g && listed.get(t.idBase + g) !== m) problems.push(`d${t.dom} gfn ${g} maps mfn ${m} shared, unrecorded`);
      }
    }
    if (countOnly !== this.countOnlyMappings) problems.push(`mfn ${this.countOnly}: ${countOnly} mappings, count says ${this.countOnlyMappings}`);
    if (entries !== this.used) problems.push(`${entries} shared entries in the tables, ${this.used} in use`);
    return problems;
  }

  /**
   * Lists the mappers of `mfn` at its anchor `gfn` (found in the tables) before a mapping at
   * another gfn joins them. False, leaving the anchor for the caller to move, when none is left.
   */
  private listAnchored(mfn: Mfn, gfn: number): boolean {
    let any = false;
    for (const t of this.tables) {
      if (mapsAt(t, gfn, mfn)) {
        this.push(mfn, t.idBase + gfn);
        any = true;
      }
    }
    return any;
  }

  /** Appends `id` to `mfn`'s list, starting one when its anchor names a gfn. */
  private push(mfn: Mfn, id: number): void {
    const a = this.anchor[mfn]!;
    let head = a <= LISTED ? LISTED - a : NIL;
    if (head === NIL || this.nodes[head * NODE_WORDS + 1] === RMAP_IDS_PER_NODE) {
      const node = this.allocNode();
      this.nodes[node * NODE_WORDS] = head;
      this.nodes[node * NODE_WORDS + 1] = 0;
      this.anchor[mfn] = LISTED - node;
      if (head !== NIL && !this.heavy.has(mfn) && this.nodesFrom(node) >= RMAP_HEAVY_NODES) this.makeHeavy(mfn);
      head = node;
    }
    const base = head * NODE_WORDS;
    const n = this.nodes[base + 1]!;
    this.nodes[base + 2 + n] = id;
    this.nodes[base + 1] = n + 1;
    if (this.heavy.has(mfn)) this.places.set(id, base + 2 + n);
  }

  /** Nodes of the list starting at `node`. */
  private nodesFrom(node: number): number {
    let n = 0;
    for (let x = node; x !== NIL; x = this.nodes[x * NODE_WORDS]!) n++;
    return n;
  }

  /** Indexes the places of `mfn`'s listed ids. */
  private makeHeavy(mfn: Mfn): void {
    this.heavy.add(mfn);
    const nodes = this.nodes;
    for (let node = LISTED - this.anchor[mfn]!; node !== NIL; node = nodes[node * NODE_WORDS]!) {
      const base = node * NODE_WORDS;
      for (let k = 0; k < nodes[base + 1]!; k++) this.places.set(nodes[base + 2 + k]!, base + 2 + k);
    }
  }

  /**
   * Takes `id` out of `mfn`'s list, moving the first node's last id into its place (later nodes
   * stay full). False when it is not listed.
   */
  private unlist(mfn: Mfn, id: number): boolean {
    const nodes = this.nodes;
    const head = LISTED - this.anchor[mfn]!;
    const heavy = this.heavy.has(mfn);
    let at = heavy ? this.places.get(id) : -1;
    for (let node = head; !heavy && at < 0 && node !== NIL; node = nodes[node * NODE_WORDS]!) {
      const base = node * NODE_WORDS;
      for (let k = 0; k < nodes[base + 1]!; k++) {
        if (nodes[base + 2 + k] === id) {
          at = base + 2 + k;
          break;
        }
      }
    }
    if (at < 0) return false;
    const hb = head * NODE_WORDS;
    const last = nodes[hb + 1]! - 1;
    const moved = nodes[hb + 2 + last]!;
    nodes[at] = moved;
    nodes[hb + 1] = last;
    if (heavy) {
      this.places.delete(id);
      if (moved !== id) this.places.set(moved, at);
    }
    if (last === 0) {
      const next = nodes[hb]!;
      this.anchor[mfn] = next === NIL ? NIL : LISTED - next;
      nodes[hb] = this.freeNode;
      this.freeNode = head;
      if (next === NIL) this.heavy.delete(mfn);
    }
    return true;
  }

  private allocNode(): number {
    if (this.freeNode !== NIL) {
      const node = this.freeNode;
      this.freeNode = this.nodes[node * NODE_WORDS]!;
      return node;
    }
    if ((this.nodesCarved + 1) * NODE_WORDS > this.nodes.length) {
      const grown = new Int32Array(this.nodes.length * 2);
      grown.set(this.nodes);
      this.nodes = grown;
    }
    return this.nodesCarved++;
  }

  private checkMfn(mfn: number, op: string): void {
    // Plain ifs, not invariant(): its message would be built on every add and remove.
    if (mfn >>> 0 !== mfn || mfn >= this.totalFrames) {
      throw new InvariantError(`rmap ${op}: mfn ${mfn} out of range 0 .. ${this.totalFrames - 1}`);
    }
  }

  private tableFor(dom: DomId, gfn: Gfn, op: string): ArrayP2mTable {
    const table = this.tableOf(dom);
    if (table === undefined || table.idBase < 0) throw new InvariantError(`rmap ${op}: domain ${dom} has no p2m table`);
    if (gfn >>> 0 !== gfn || gfn >= table.size) {
      throw new InvariantError(`rmap ${op}: gfn ${gfn} out of range of d${dom}`);
    }
    return table;
  }
}

/** True when `table`'s entry `gfn` exists and is (mfn, ram_shared). */
function mapsAt(table: ArrayP2mTable, gfn: number, mfn: number): boolean {
  return gfn < table.size && table.type(asGfn(gfn)) === P2mType.ram_shared && table.mfn(asGfn(gfn)) === mfn;
}
