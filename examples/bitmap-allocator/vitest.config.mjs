import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defineConfig } from 'vitest/config';

// Inside the pagevisor repository the @pagevisor packages are workspace links that carry their
// TypeScript sources: the `@pagevisor/source` export condition reads those, so nothing needs
// building before the tests (as in every package of the repository). Installed from npm they ship
// `dist/` only, and the condition stays off. PAGEVISOR_SOURCE=0 forces `dist/` here too.
const typesDir = dirname(createRequire(import.meta.url).resolve('@pagevisor/types/package.json'));
const fromSource = process.env['PAGEVISOR_SOURCE'] !== '0' && existsSync(join(typesDir, 'src', 'index.ts'));
const conditions = fromSource ? { ssr: { resolve: { conditions: ['@pagevisor/source'] } }, resolve: { conditions: ['@pagevisor/source'] } } : {};

export default defineConfig({
  ...conditions,
  test: {
    include: ['*.test.mjs'],
    environment: 'node',
    // The conformance kit runs many random sequences: the timeout catches hangs, not slowness.
    testTimeout: 300_000,
  },
});
