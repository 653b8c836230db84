import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkDedupStrategy, HOST_CONFIGURATIONS } from './index.js';
import plugin from '../tests/example/twice-dedup.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const file = (path: string): string => readFileSync(new URL(path, import.meta.url), 'utf8');

/** The fenced code block that follows the first mention of `name` in the README. */
function blockAfter(name: string): string {
  const at = readme.indexOf(name);
  expect(at, name).toBeGreaterThanOrEqual(0);
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  return m![1]!;
}

describe('the README', () => {
  it('shows the example plugin and its test as they are in tests/example', () => {
    expect(blockAfter('`twice-dedup.ts`:')).toBe(file('../tests/example/twice-dedup.ts'));
    expect(blockAfter('`twice-dedup.test.ts`:')).toBe(file('../tests/example/twice-dedup.kit.ts'));
  });

  it('lists every host configuration of the kit, in order', () => {
    const rows = [...readme.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
    expect(rows).toEqual(HOST_CONFIGURATIONS.map((c) => c.name));
  });
});

describe('the example plugin', () => {
  it('passes the kit in a few configurations (the README runs all), and refuses a bad capacity by name', async () => {
    const report = await checkDedupStrategy(plugin, { runs: 20, configurations: ['basic', 'trust groups, index per group', 'swap: shared area, clock'], options: { capacity: 3 } });
    expect(report.configurations.every((c) => c.useful)).toBe(true);
    await expect(checkDedupStrategy(plugin, { options: { capacity: 0 } })).rejects.toThrow(
      'testkit: dedup plugin "twice" in configuration "basic": plugin twice: options refused: capacity must be a positive integer, got 0',
    );
  }, 60_000);
});
