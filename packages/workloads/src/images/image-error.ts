/** `n` as `0x...` (lowercase hex), the way image errors name offsets, sizes and addresses. */
export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}

/**
 * A guest memory image that cannot be used: its file is malformed, truncated, or changed after
 * it was validated. Thrown before any page is handed out when the structure is wrong.
 * The message reads `FORMAT image PATH: offset 0xOFF: PROBLEM; expected EXPECTED`.
 */
export class ImageError extends Error {
  override readonly name = 'ImageError';
  /** The image file. */
  readonly path: string;
  /** The format it was read as (`"raw"`, `"elf"` or `"proc"`). */
  readonly format: string;
  /** File offset of the bad field or data, in bytes. */
  readonly offset: number;
  /** What is wrong there, e.g. `e_type is 2 (ET_EXEC)`. */
  readonly problem: string;
  /** What the importer expected instead, e.g. `4 (ET_CORE)`. */
  readonly expected: string;

  constructor(path: string, format: string, offset: number, problem: string, expected: string) {
    super(`${format} image ${path}: offset ${hex(offset)}: ${problem}; expected ${expected}`);
    this.path = path;
    this.format = format;
    this.offset = offset;
    this.problem = problem;
    this.expected = expected;
  }
}
