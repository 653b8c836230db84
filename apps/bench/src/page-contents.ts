import { PAGE_SIZE, Prng } from '@pagevisor/types';

/** A page buffer whose first word selects one of many distinct contents, the second a family: the same random page otherwise. */
export class Contents {
  readonly page = new Uint8Array(PAGE_SIZE);
  private readonly words = new Uint32Array(this.page.buffer);
  constructor(seed: number) {
    new Prng(seed).fillBytes(this.page);
  }
  /** The page of content `i` of family `family` (the one buffer, rewritten). */
  at(i: number, family: number): Uint8Array {
    this.words[0] = i;
    this.words[1] = family;
    return this.page;
  }
}
