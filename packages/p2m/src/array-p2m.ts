import { asGfn, invariant, isRealDomId, P2mType, type DomId, type P2m } from '@pagevisor/types';
import { ArrayP2mTable, MAX_P2M_TYPE, NO_RMAP_ENTRY } from './p2m-table.js';
import { ArrayReverseMap } from './reverse-map.js';

/**
 * All domains' p2m tables ({@link ArrayP2mTable}) and the reverse map of shared frames
 * ({@link ArrayReverseMap}), all in typed arrays.
 *
 * Metadata cost: 5 bytes per guest frame in its table (mfn 4, type 1); 8 more per guest frame in
 * a table that has had a shared mapping (its reverse-map links, next 4 + prev 4); and 8 bytes per
 * machine frame (list head 4, count 4). A guest page thus costs 5 bytes, or 13 in a domain that
 * shares, however many of its pages share. {@link metadataBytes} reports the actual total.
 */
export class ArrayP2m implements P2m {
  /** The reverse map of shared frames. */
  readonly rmap: ArrayReverseMap;
  private readonly tables = new Map<DomId, ArrayP2mTable>();

  /** A p2m for a host of `totalFrames` machine frames, with no tables yet. */
  constructor(totalFrames: number) {
    this.rmap = new ArrayReverseMap(totalFrames, (dom) => this.tables.get(dom));
  }

  /**
   * Creates an all-invalid table of `size` guest frames for `dom`; InvariantError if it has one,
   * HypervisorError ENOMEM if the reverse map has no ids left for it (nothing changes then).
   */
  createTable(dom: DomId, size: number): ArrayP2mTable {
    invariant(isRealDomId(dom), `p2m: ${dom} is not a real domain id`);
    invariant(!this.tables.has(dom), `p2m: domain ${dom} already has a table`);
    const table = new ArrayP2mTable(dom, size);
    this.rmap.register(table);
    this.tables.set(dom, table);
    return table;
  }

  /** Drops `dom`'s table; InvariantError if it has none, has populated entries or reverse-map entries. */
  destroyTable(dom: DomId): void {
    const table = this.tables.get(dom);
    invariant(table !== undefined, `p2m: domain ${dom} has no table to destroy`);
    invariant(table.populated === 0, `p2m: domain ${dom} still has ${table.populated} populated entries`);
    invariant(
      table.rmapEntries === 0,
      `p2m: domain ${dom} still has ${table.rmapEntries} reverse-map entries`,
    );
    this.rmap.unregister(table);
    this.tables.delete(dom);
  }

  /** `dom`'s table, or undefined. */
  table(dom: DomId): ArrayP2mTable | undefined {
    return this.tables.get(dom);
  }

  /** Domains that have a table, in creation order. */
  domains(): DomId[] {
    return [...this.tables.keys()];
  }

  /** Bytes held by all typed arrays: every table plus the reverse map. */
  metadataBytes(): number {
    let bytes = this.rmap.metadataBytes();
    for (const table of this.tables.values()) bytes += table.metadataBytes();
    return bytes;
  }

  /**
   * Broken invariants, in words (empty when sound): each table's populated count, each table's
   * count of reverse-map entries, and the reverse map's own structure and its agreement with the
   * tables (see {@link ArrayReverseMap.audit}). Not for the hot path: O(frames + guest frames).
   */
  audit(): string[] {
    const problems = this.rmap.audit(P2mType.ram_shared);
    let tableEntries = 0;
    for (const [dom, table] of this.tables) {
      let populated = 0;
      let entries = 0;
      for (let g = 0; g < table.size; g++) {
        if (table.type(asGfn(g)) !== P2mType.invalid) populated++;
        if (table.rmapPrev !== null && table.rmapPrev[g] !== NO_RMAP_ENTRY) entries++;
      }
      let ofTypes = 0;
      for (let type = 0; type <= MAX_P2M_TYPE; type++) {
        let n = 0;
        for (let g = 0; g < table.size; g++) if (table.type(asGfn(g)) === type) n++;
        if (n !== table.countOf(type as P2mType)) problems.push(`d${dom}: ${n} entries of type ${type}, counter says ${table.countOf(type as P2mType)}`);
        ofTypes += n;
      }
      if (ofTypes !== table.size) problems.push(`d${dom}: ${ofTypes} entries of known types in ${table.size}`);
      if (populated !== table.populated) {
        problems.push(`d${dom}: ${populated} populated entries, counter says ${table.populated}`);
      }
      if (entries !== table.rmapEntries) {
        problems.push(`d${dom}: ${entries} gfns with reverse-map entries, counter says ${table.rmapEntries}`);
      }
      tableEntries += entries;
    }
    // Every listed node is a gfn with an entry (checked by the reverse map), so equal totals mean
    // no gfn claims an entry outside the lists.
    if (tableEntries !== this.rmap.size) {
      problems.push(`${tableEntries} gfns have reverse-map entries, ${this.rmap.size} entries in use`);
    }
    return problems;
  }
}
