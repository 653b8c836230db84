import { asGfn, invariant, isRealDomId, P2mType, type DomId, type P2m } from '@pagevisor/types';
import { ArrayP2mTable, MAX_P2M_TYPE } from './p2m-table.js';
import { ArrayReverseMap } from './reverse-map.js';

/**
 * All domains' p2m tables ({@link ArrayP2mTable}) and the reverse map of shared frames
 * ({@link ArrayReverseMap}), all in typed arrays.
 *
 * Metadata cost: 5 bytes per guest frame in its table (a 32-bit mfn and a type byte) and 4 bytes per
 * machine frame (the reverse map's anchor; none when it is lent the frame table's m2p words),
 * plus 32 bytes per 6 mappings of frames shared at different gfns (the reverse map's list nodes). {@link metadataBytes} reports the actual total.
 */
export class ArrayP2m implements P2m {
  /** The reverse map of shared frames. */
  readonly rmap: ArrayReverseMap;
  private readonly tables = new Map<DomId, ArrayP2mTable>();

  /**
   * A p2m for a host of `totalFrames` machine frames, with no tables yet. Mappings of frame
   * `countOnly` (the zero frame) are counted, not listed, by the reverse map; `anchors` are
   * per-frame words it may keep its anchors in (see {@link ArrayReverseMap}).
   */
  constructor(totalFrames: number, countOnly = -1, anchors?: Int32Array) {
    this.rmap = new ArrayReverseMap(totalFrames, (dom) => this.tables.get(dom), countOnly, anchors);
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

  /** Drops `dom`'s table; InvariantError if it has none or has populated entries. */
  destroyTable(dom: DomId): void {
    const table = this.tables.get(dom);
    invariant(table !== undefined, `p2m: domain ${dom} has no table to destroy`);
    invariant(table.populated === 0, `p2m: domain ${dom} still has ${table.populated} populated entries`);
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
   * Broken invariants, in words (empty when sound): each table's populated count and counts of
   * each type, and the reverse map's structure and its agreement with the tables (see
   * {@link ArrayReverseMap.audit}). Not for the hot path: O(frames + guest frames).
   */
  audit(): string[] {
    const problems = this.rmap.audit();
    for (const [dom, table] of this.tables) {
      const counts = new Float64Array(MAX_P2M_TYPE + 1);
      let unknown = 0;
      for (let g = 0; g < table.size; g++) {
        const type = table.type(asGfn(g));
        if (type <= MAX_P2M_TYPE) counts[type]!++;
        else unknown++;
      }
      if (unknown > 0) problems.push(`d${dom}: ${unknown} entries of no known type`);
      let populated = 0;
      for (let type = 0; type <= MAX_P2M_TYPE; type++) {
        const n = counts[type]!;
        if (n !== table.countOf(type as P2mType)) problems.push(`d${dom}: ${n} entries of type ${type}, counter says ${table.countOf(type as P2mType)}`);
        if (type !== P2mType.invalid) populated += n;
      }
      if (populated !== table.populated) {
        problems.push(`d${dom}: ${populated} populated entries, counter says ${table.populated}`);
      }
    }
    return problems;
  }
}
