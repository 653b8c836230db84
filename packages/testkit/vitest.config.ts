import { defineConfig } from 'vitest/config';

export default defineConfig({
  ssr: { resolve: { conditions: ['@pagevisor/source'] } },
  resolve: { conditions: ['@pagevisor/source'] },
  test: {
    include: ['src/**/*.test.ts', 'tests/**/*.test.ts'],
    environment: 'node',
    // Timeouts catch hangs, not slowness: CI machines are shared and property tests vary.
    testTimeout: 60_000,
  },
});
