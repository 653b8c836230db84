import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SIMULATOR_DIR } from '../simulator-cli.js';
import { runScale, SCALE_ID } from './scale.js';

// The quick scale scenario (64 times smaller, about a second) through the CLI of a checkout given
// as --simulator-root would give it: this one's. Not timed assertions: what the suite reports.
describe('the scale suite, quick, on a checkout given as its simulator root', () => {
  const root = resolve(SIMULATOR_DIR, '..', '..');

  it('runs that checkout\'s CLI and measures the process\'s CPU time beside its wall time', async () => {
    const r = await runScale({ quick: true, repeats: 1, log: () => {}, limits: new Map(), simulatorRoot: root });
    const byId = new Map(r.measurements.map((m) => [m.id, m]));
    expect(byId.get(SCALE_ID.wall)!.median).toBeGreaterThan(0);
    const cpu = byId.get(SCALE_ID.processCpu);
    const cpuNote = r.notes.find((n) => n.startsWith('CPU time: '))!;
    if (cpuNote.includes('not measured')) {
      expect(cpu).toBeUndefined();
    } else {
      expect(cpu).toMatchObject({ unit: 's', better: 'lower', name: expect.stringMatching(/^CPU time of the process, user \+ sys \((GNU time|\/proc\/PID\/stat, polled)\)$/) });
      expect(cpu!.median).toBeGreaterThan(0);
    }
    expect(r.notes).toContain(`simulator: ${resolve(root, 'apps/simulator')} (--simulator-root ${root}; the scenario file is this checkout's, without $schema), not the bench's own.`);
  }, 120_000);

  it('refuses a root whose simulator is not built', async () => {
    await expect(runScale({ quick: true, repeats: 1, log: () => {}, limits: new Map(), simulatorRoot: '/nonexistent-checkout' })).rejects.toThrow(/not a checkout of pagevisor/);
  });
});
