import { PAGE_SIZE, Prng } from '@pagevisor/types';

/** A page buffer whose first word selects one of many distinct contents, the second a family: the same random page otherwise. */
export class Contents {
  readonly page: Uint8Array;
  private readonly words: Uint32Array;
  /**
   * @param page the buffer to build the pages in (default a plain one); the machine's
   *   `pageBuffer(1)`, as the simulator's guests use, makes their hash in place.
   */
  constructor(seed: number, page: Uint8Array = new Uint8Array(PAGE_SIZE)) {
    this.page = page;
    this.words = new Uint32Array(page.buffer, page.byteOffset, PAGE_SIZE / 4);
    new Prng(seed).fillBytes(this.page);
  }
  /** The page of content `i` of family `family` (the one buffer, rewritten). */
  at(i: number, family: number): Uint8Array {
    this.words[0] = i;
    this.words[1] = family;
    return this.page;
  }
}
