import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testProject } from '../tests/test-project.js';
import { failureSummary, portableScenario, SCENARIO_DIR, scenarioFile, SIMULATOR_BIN, SIMULATOR_DIR, simulatorAt, simulatorRootMissing } from './simulator-cli.js';

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

describe('another checkout\'s simulator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sim-root-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is the bench\'s own without a root, else ROOT/apps/simulator', () => {
    expect(simulatorAt()).toEqual({ dir: SIMULATOR_DIR, bin: SIMULATOR_BIN });
    expect(simulatorAt('/work/old565')).toEqual({ dir: resolve('/work/old565/apps/simulator'), bin: resolve('/work/old565/apps/simulator/bin/pagevisor.js') });
  });

  it('can run when that checkout\'s simulator is built, and says what is missing when not', () => {
    // This checkout, seen as a root, is built (the tests above run its CLI).
    expect(simulatorRootMissing(resolve(SIMULATOR_DIR, '..', '..'))).toBeUndefined();
    expect(simulatorRootMissing(join(dir, 'none'))).toMatch(/none is not a checkout of pagevisor \(no apps\/simulator\)/);
    mkdirSync(join(dir, 'apps', 'simulator', 'bin'), { recursive: true });
    expect(simulatorRootMissing(dir)).toMatch(/the simulator of .* is not built \(.*dist\/cli\.js missing\)/);
    mkdirSync(join(dir, 'apps', 'simulator', 'dist'));
    writeFileSync(join(dir, 'apps', 'simulator', 'dist', 'cli.js'), '');
    expect(simulatorRootMissing(dir)).toMatch(/has no CLI entry \(.*bin\/pagevisor\.js missing\)/);
  });

  it('gets the scenario without $schema, every other field as it is', () => {
    const scenario = JSON.parse(readFileSync(join(SCENARIO_DIR, 'scale-16x1g.json'), 'utf8')) as Record<string, unknown>;
    expect(scenario['$schema']).toBeDefined();
    const { $schema: _s, ...rest } = scenario;
    expect(portableScenario(scenario)).toEqual(rest);
    expect(portableScenario({ name: 'x' })).toEqual({ name: 'x' });
  });
});
