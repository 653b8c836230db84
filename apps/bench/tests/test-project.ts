import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A dedup plugin that indexes nothing, like NoDedup, importing nothing. */
const NOTHING_SHARED = `class NothingShared {
  name = 'nothing-shared';
  inline = false;
  populateZero = false;
  size = 0;
  attach() {}
  lookup() { return -1; }
  insert() { throw new Error('nothing-shared indexes nothing'); }
  remove() {}
  contains() { return false; }
  metadataBytes() { return 0; }
  stats() { return { size: 0 }; }
  audit() { return []; }
}
export default { kind: 'dedup', name: 'nothing-shared', create: () => new NothingShared() };
`;

/**
 * A project directory for tests, as a user of the bench would have one:
 * - `hash-map.mjs`, a dedup plugin named `my-hash-map` (the example HashMapDedup: it shares like
 *   inline), importing @pagevisor/dedup by the URL of its build (dist/), which a child process
 *   outside the workspace can load;
 * - an installed package `@me/nothing-shared` (ESM only: its exports name an `import` entry
 *   alone), a dedup plugin named `nothing-shared` that shares nothing (as NoDedup), so that the
 *   default scenario fails under it. It imports nothing: under vitest, a module Node itself
 *   imports from a node_modules resolves workspace packages to their TypeScript source;
 * - `policy.mjs`, an eviction-policy plugin, and `inline.mjs`, a dedup plugin named like the built-in.
 */
export function testProject(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pagevisor-bench-project-'));
  // dist/ by name: under vitest, resolving '@pagevisor/dedup' would give its TypeScript source.
  const dedup = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('@pagevisor/dedup/package.json')), 'dist', 'index.js')).href;
  writeFileSync(join(dir, 'hash-map.mjs'), `import { HashMapDedup } from '${dedup}';\nexport default { kind: 'dedup', name: 'my-hash-map', create: () => new HashMapDedup() };\n`);
  writeFileSync(join(dir, 'inline.mjs'), `import { HashMapDedup } from '${dedup}';\nexport default { kind: 'dedup', name: 'inline', create: () => new HashMapDedup() };\n`);
  writeFileSync(join(dir, 'policy.mjs'), `export default { kind: 'eviction-policy', name: 'p', create: () => ({}) };\n`);
  const pkg = join(dir, 'node_modules', '@me', 'nothing-shared');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: '@me/nothing-shared', version: '1.0.0', type: 'module', exports: { '.': { import: './index.mjs' } } }));
  writeFileSync(join(pkg, 'index.mjs'), NOTHING_SHARED);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
