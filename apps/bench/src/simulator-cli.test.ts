import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testProject } from '../tests/test-project.js';
import { failureSummary, SCENARIO_DIR, scenarioFile, SIMULATOR_BIN, SIMULATOR_DIR } from './simulator-cli.js';

describe('the simulator', () => {
  it('is found through its package, with its CLI and scenarios', () => {
    expect(JSON.parse(readFileSync(join(SIMULATOR_DIR, 'package.json'), 'utf8'))).toMatchObject({ name: '@pagevisor/simulator' });
    expect(existsSync(SIMULATOR_BIN)).toBe(true);
    expect(existsSync(join(SCENARIO_DIR, 'static-compare.json'))).toBe(true);
  });
});

describe('scenarioFile', () => {
  const project = testProject();
  afterAll(() => project.remove());

  it('links packages beside the file and removes the links, not the packages', () => {
    const dir = realpathSync(join(project.dir, 'node_modules', '@me', 'nothing-shared'));
    const file = scenarioFile({ name: 'x' }, 'x', [{ name: '@me/nothing-shared', dir }]);
    const linked = join(file.path, '..', 'node_modules', '@me', 'nothing-shared', 'package.json');
    expect(JSON.parse(readFileSync(linked, 'utf8'))).toMatchObject({ name: '@me/nothing-shared' });
    file.remove();
    expect(existsSync(file.path)).toBe(false);
    expect(existsSync(join(dir, 'index.mjs'))).toBe(true);
  });
});

describe('failureSummary', () => {
  it("says what a failed run's report says failed", () => {
    const report = { totals: { failedGuests: 2, failedSteps: 0 }, failures: [{ guest: 'g-1', message: 'populate_physmap: ENOMEM: 512 frames needed, 511 free' }] };
    expect(failureSummary(JSON.stringify(report))).toBe('2 guests failed; first: g-1: populate_physmap: ENOMEM: 512 frames needed, 511 free');
    expect(failureSummary(JSON.stringify({ totals: { failedGuests: 0, failedSteps: 1 }, failures: [] }))).toBe('1 step failed');
    expect(failureSummary('not json')).toBeUndefined();
    expect(failureSummary('null')).toBeUndefined();
    expect(failureSummary('{}')).toBeUndefined();
  });
});
