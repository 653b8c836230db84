import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import xxhash from 'xxhash-wasm';

/** The C reference's source, in the repository's tools (not in an installed package). */
export const NATIVE_SOURCE = fileURLToPath(new URL('../../../tools/native-limits/limits.c', import.meta.url));

/** What the C reference measured: per figure the rate of each repeat, in pages (operations) per CPU second. */
export interface NativeLimits {
  readonly copy: number[];
  readonly hash: number[];
  readonly hashCold: number[];
  readonly compare: number[];
  readonly copyHash: number[];
  readonly hashCompare: number[];
  readonly firstTouch: number[];
}

/** The bytes of the reference's source page: its LCG's top byte, step by step. */
function sourcePage(): Uint8Array {
  const page = new Uint8Array(4096);
  let seed = 1n;
  for (let i = 0; i < page.length; i++) {
    seed = (seed * 6364136223846793005n + 1442695040888963407n) & 0xffff_ffff_ffff_ffffn;
    page[i] = Number(seed >> 56n);
  }
  return page;
}

/**
 * Builds tools/native-limits/limits.c with `cc -O2` (once per source version, in the temporary
 * directory) and runs it over `pages` frames `repeats` times; checks its XXH64 against
 * xxhash-wasm's of the same page. Throws a clear error when there is no source or no `cc`
 * (the limits suite notes it and goes on), or when the hash differs (a wrong reference).
 */
export async function measureNativeLimits(pages: number, repeats: number, source = NATIVE_SOURCE): Promise<NativeLimits> {
  if (!existsSync(source)) throw new Error(`the C reference ${source} is missing (it runs from the pagevisor repository)`);
  const text = readFileSync(source);
  const binary = join(tmpdir(), `pagevisor-native-limits-${createHash('sha256').update(text).digest('hex').slice(0, 16)}`);
  if (!existsSync(binary)) {
    const cc = spawnSync('cc', ['-O2', '-Wall', '-o', binary, source], { encoding: 'utf8' });
    if (cc.error !== undefined) throw new Error(`no C compiler: ${cc.error.message} (install one, e.g. apt-get install gcc)`);
    if (cc.status !== 0) throw new Error(`cc failed on ${source}:\n${cc.stderr}`);
  }
  const run = spawnSync(binary, [String(pages), String(repeats)], { encoding: 'utf8', timeout: 600_000 });
  if (run.status !== 0) throw new Error(`${binary} exited ${run.status ?? run.signal}: ${run.stderr.trim()}`);
  const out = JSON.parse(run.stdout) as NativeLimits & { xxh64: string };
  const { h64Raw } = await xxhash();
  const expected = h64Raw(sourcePage(), 0n).toString(16).padStart(16, '0');
  if (out.xxh64 !== expected) throw new Error(`the C reference's XXH64 of its page is ${out.xxh64}, xxhash-wasm's ${expected}: not XXH64`);
  return out;
}
