import { describe, expect, it } from 'vitest';
import { measureSavings, MITIGATION_NAMES, runAttack, type AttackedStrategy, type MitigationName } from './side-channel.js';

const TRIALS = 1000;

describe.each<AttackedStrategy>(['inline', 'ksm'])('the de-duplication timing attack under %s', (strategy) => {
  it(`detects the victim's page in nearly every one of ${TRIALS} trials without a mitigation`, async () => {
    const r = await runAttack({ strategy, mitigation: 'none', trials: TRIALS, seed: 7 });
    expect(r.trials).toBe(TRIALS);
    // A fair coin decides each secret: both cases occur often.
    expect(r.victimHeld).toBeGreaterThan(400);
    expect(r.victimHeld).toBeLessThan(600);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.99);
    // The write to a merged page is the slow one: a copy-on-write fault on the simulated clock.
    expect(r.meanWriteNsHeld).toBeGreaterThan(r.meanWriteNsNotHeld);
  });

  it.each<MitigationName>(MITIGATION_NAMES.filter((m) => m !== 'none'))(`is no better than a coin under %s over ${TRIALS} trials`, async (mitigation) => {
    const r = await runAttack({ strategy, mitigation, trials: TRIALS, seed: 7 });
    expect(r.accuracy).toBeLessThanOrEqual(0.55);
    // Held or not, the timed write costs the same: nothing to tell apart.
    expect(r.meanWriteNsHeld).toBe(r.meanWriteNsNotHeld);
  });

  it('gives one result for one seed', async () => {
    const a = await runAttack({ strategy, mitigation: 'none', trials: 150, seed: 3 });
    const b = await runAttack({ strategy, mitigation: 'none', trials: 150, seed: 3 });
    expect(a).toEqual(b);
  });
});

describe('the savings each mitigation keeps', () => {
  it('ranks none and uniform writes (all savings) above trust groups (within a tenant) above zero pages only', async () => {
    const s = Object.fromEntries(await Promise.all(MITIGATION_NAMES.map(async (m) => [m, await measureSavings('inline', m, 1)] as const)));
    expect(s['uniform-writes']!.machineFramesUsed).toBe(s['none']!.machineFramesUsed);
    expect(s['trust-groups']!.machineFramesUsed).toBeGreaterThan(s['none']!.machineFramesUsed);
    expect(s['zero-pages-only']!.machineFramesUsed).toBeGreaterThan(s['trust-groups']!.machineFramesUsed);
    expect(s['zero-pages-only']!.savedPct).toBeGreaterThan(0);
  });
});

it('refuses a trial count that is not a positive integer', async () => {
  await expect(runAttack({ strategy: 'inline', mitigation: 'none', trials: 0, seed: 1 })).rejects.toThrow(/trials must be a positive integer, got 0/);
});

describe('pagevisor attack', () => {
  it('prints a row per mitigation, and refuses bad options naming them', async () => {
    const { main } = await import('./cli.js');
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) } };
    expect(await main(['attack', '--dedup', 'inline', '--trials', '100', '--json'], io)).toBe(0);
    const report = JSON.parse(out.join('')) as { rows: { attack: { mitigation: string; accuracy: number } }[] };
    expect(report.rows.map((r) => r.attack.mitigation)).toEqual([...MITIGATION_NAMES]);
    expect(report.rows[0]!.attack.accuracy).toBe(1);
    expect(await main(['attack', '--trials', '0'], io)).toBe(1);
    expect(err.join('')).toMatch(/option '--trials <n>' argument '0' is invalid\. It must be an integer from 1 to 1,000,000\./);
    expect(await main(['attack', '--dedup', 'esx'], io)).toBe(1);
    expect(err.join('')).toMatch(/option '--dedup <strategy>' argument 'esx' is invalid\. Allowed choices are inline, ksm\./);
    expect(await main(['run', '--trials', '5'], io)).toBe(1);
    expect(err.join('')).toMatch(/unknown option '--trials'/);
  });
});
