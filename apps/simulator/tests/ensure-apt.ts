import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ENSURE = fileURLToPath(new URL('../scripts/ensure-apt.sh', import.meta.url));

/** How long an install may take (apt-get update and the download of Chromium on a fresh machine). */
export const INSTALL_TIMEOUT_MS = 15 * 60_000;

/**
 * Makes sure `binary` is there, installing Debian's `pkg` when missing (scripts/ensure-apt.sh):
 * the tests that need a real Chromium or Redis use the real one, never a stand-in.
 * @throws naming what is missing and how to install it by hand.
 */
export function ensureApt(binary: string, pkg: string): string {
  const ensure = spawnSync('sh', [ENSURE, binary, pkg], { encoding: 'utf8', timeout: INSTALL_TIMEOUT_MS });
  process.stdout.write(ensure.stdout ?? '');
  process.stderr.write(ensure.stderr ?? '');
  if (ensure.status !== 0) {
    throw new Error(`scripts/ensure-apt.sh could not provide ${binary} (exit ${ensure.status ?? ensure.signal}): ${(ensure.stderr ?? '').trim() || ensure.error?.message}`);
  }
  return binary;
}
