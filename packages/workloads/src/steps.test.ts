import { describe, expect, it } from 'vitest';
import { parseScenario, ScenarioError } from './scenario.js';
import { DEFAULT_WAIT_TIMEOUT_S, STEP_OPS, StepSchema } from './steps.js';

// Two guests of 1 MiB (256 pages) named vm-0 and vm-1, and one named solo.
const base = {
  name: 'steps',
  machine: { memoryMiB: 8 },
  guests: [
    { name: 'vm', count: 2, memoryMiB: 1 },
    { name: 'solo', memoryMiB: 2 },
  ],
};

function withSteps(steps: unknown): unknown {
  return { ...base, steps };
}

function issuesOf(input: unknown): readonly string[] {
  try {
    parseScenario(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).issues;
  }
  throw new Error('expected a ScenarioError');
}

describe('scenario steps', () => {
  it('parses every kind of step, filling in defaults', () => {
    const steps = [
      { op: 'fill', guest: 'vm-0', gfn: 0, count: 100, pattern: 171 },
      { op: 'fill', guest: 'vm-1', gfn: 10, count: 5, seed: 5, distinct: true },
      { op: 'fill', guest: 'solo', gfn: 0, count: 512, seed: 0 },
      { op: 'write', guest: 'vm-0', gfn: 255, offset: 4093, bytes: [1, 2, 3] },
      { op: 'madvise', guest: 'vm-0', gfn: 0, count: 256, advice: 'unmergeable' },
      { op: 'set_memory_merge', guest: 'solo', on: false },
      { op: 'discard', guest: 'vm-1', gfn: 0, count: 1 },
      { op: 'populate', guest: 'vm-1', gfn: 0, count: 1 },
      { op: 'fork', guest: 'vm-1', child: 'vm-1-fork' },
      { op: 'set', knob: 'max_page_sharing', value: 2, expect: 'EBUSY' },
      { op: 'wait', ms: 100 },
      { op: 'wait_full_scans', count: 2 },
      { op: 'checkpoint', label: 'after-merge', expect: 'ok' },
    ];
    const s = parseScenario(withSteps(steps));
    expect(s.steps.map((st) => st.op)).toEqual(['fill', 'fill', ...STEP_OPS]);
    expect(s.steps[11]).toEqual({ op: 'wait_full_scans', count: 2, timeoutS: DEFAULT_WAIT_TIMEOUT_S });
    expect(s.steps[0]).toEqual(steps[0]);
    expect(parseScenario(base).steps).toEqual([]);
  });

  it('refuses an unknown or missing op, naming the step', () => {
    expect(issuesOf(withSteps([{ op: 'checkpoint', label: 'a' }, { op: 'teleport' }]))).toEqual([
      `steps[1].op: must be one of ${STEP_OPS.join(', ')}`,
    ]);
    expect(issuesOf(withSteps([{ guest: 'vm-0' }]))).toEqual([`steps[0].op: missing; must be one of ${STEP_OPS.join(', ')}`]);
    expect(issuesOf(withSteps([7]))).toEqual(['steps[0]: must be a step object']);
    expect(issuesOf(withSteps({ op: 'wait' }))).toEqual(['steps: must be an array of steps']);
  });

  it('refuses bad fields of a step, each by its path', () => {
    expect(issuesOf(withSteps([{ op: 'fill', guest: 'vm-0', gfn: -1, count: 0, pattern: 256 }]))).toEqual([
      'steps[0].gfn: must be an integer >= 0',
      'steps[0].count: must be a positive integer',
      'steps[0].pattern: must be an integer from 0 to 255',
    ]);
    expect(issuesOf(withSteps([{ op: 'write', guest: 'vm-0', gfn: 0, offset: 4096, bytes: [300] }]))).toEqual([
      'steps[0].offset: must be an integer from 0 to 4095',
      'steps[0].bytes[0]: must be an integer from 0 to 255',
    ]);
    expect(issuesOf(withSteps([{ op: 'write', guest: 'vm-0', gfn: 0, offset: 4094, bytes: [1, 2, 3] }]))).toEqual([
      'steps[0].bytes: 3 bytes at offset 4094 run past the 4096-byte page',
    ]);
    expect(issuesOf(withSteps([{ op: 'write', guest: 'vm-0', gfn: 0, offset: 0, bytes: [] }]))).toEqual([
      'steps[0].bytes: must be a non-empty array of bytes',
    ]);
    expect(issuesOf(withSteps([{ op: 'madvise', guest: 'vm-0', gfn: 0, count: 1, advice: 'merge' }]))).toEqual([
      'steps[0].advice: must be "mergeable", "unmergeable" or "dontneed"',
    ]);
    expect(issuesOf(withSteps([{ op: 'set_memory_merge', guest: 'vm-0', on: 1 }]))).toEqual(['steps[0].on: must be true or false']);
    expect(issuesOf(withSteps([{ op: 'set', knob: '', value: true }]))).toEqual([
      'steps[0].knob: must be a non-empty string',
      'steps[0].value: must be a number or a word',
    ]);
    expect(issuesOf(withSteps([{ op: 'wait', ms: 0 }]))).toEqual(['steps[0].ms: must be a number > 0']);
    expect(issuesOf(withSteps([{ op: 'wait_full_scans', count: 1.5, timeoutS: -1 }]))).toEqual([
      'steps[0].count: must be a positive integer',
      'steps[0].timeoutS: must be a number > 0',
    ]);
    expect(issuesOf(withSteps([{ op: 'checkpoint' }]))).toEqual(['steps[0].label: missing; must be a non-empty string']);
    expect(issuesOf(withSteps([{ op: 'wait', ms: 1, until: 2 }]))).toEqual(['steps[0].until: unknown field']);
    expect(issuesOf(withSteps([{ op: 'wait', ms: 1, expect: 'EWHATEVER' }]))[0]).toMatch(
      /^steps\[0\]\.expect: must be "ok" or an errno name \(EPERM, ENOENT, .*EBUSY/,
    );
  });

  it('wants exactly one of pattern and seed in a fill, and distinct only with a seed', () => {
    const fill = { op: 'fill', guest: 'vm-0', gfn: 0, count: 1 };
    expect(issuesOf(withSteps([fill]))).toEqual(['steps[0].pattern: give exactly one of pattern (a byte) and seed']);
    expect(issuesOf(withSteps([{ ...fill, pattern: 1, seed: 2 }]))).toEqual(['steps[0].pattern: give exactly one of pattern (a byte) and seed']);
    expect(issuesOf(withSteps([{ ...fill, pattern: 1, distinct: true }]))).toEqual([
      'steps[0].distinct: applies to seeded content only (give seed, not pattern)',
    ]);
  });

  it("names a fork's child from its step on, with a name of its own and its parent's size", () => {
    const fork = { op: 'fork', guest: 'solo', child: 'kid' };
    expect(() => parseScenario(withSteps([fork, { op: 'fill', guest: 'kid', gfn: 511, count: 1, pattern: 1 }, { op: 'fork', guest: 'kid', child: 'grandkid' }]))).not.toThrow();
    expect(issuesOf(withSteps([{ op: 'fill', guest: 'kid', gfn: 0, count: 1, pattern: 1 }, fork]))).toEqual([
      'steps[0].guest: no guest named "kid" at this step; guests are vm-0, vm-1, solo',
    ]);
    expect(issuesOf(withSteps([{ ...fork, child: 'vm-1' }]))).toEqual(['steps[0].child: "vm-1" is already a guest\'s name; a fork\'s child needs a new one']);
    expect(issuesOf(withSteps([fork, { op: 'write', guest: 'kid', gfn: 512, offset: 0, bytes: [1] }]))).toEqual([
      'steps[1].gfn: 512 is past guest "kid"\'s 512 pages (gfns 0 .. 511)',
    ]);
  });

  it('refuses unknown guests and ranges outside the guest', () => {
    expect(issuesOf(withSteps([{ op: 'set_memory_merge', guest: 'vm', on: true }]))).toEqual([
      'steps[0].guest: no guest named "vm" at this step; guests are vm-0, vm-1, solo',
    ]);
    expect(issuesOf(withSteps([{ op: 'fill', guest: 'vm-1', gfn: 200, count: 57, pattern: 0 }]))).toEqual([
      'steps[0].count: 57 pages from gfn 200 run past guest "vm-1"\'s 256 pages (at most 56)',
    ]);
    expect(issuesOf(withSteps([{ op: 'write', guest: 'vm-0', gfn: 256, offset: 0, bytes: [1] }]))).toEqual([
      'steps[0].gfn: 256 is past guest "vm-0"\'s 256 pages (gfns 0 .. 255)',
    ]);
    expect(issuesOf(withSteps([{ op: 'discard', guest: 'solo', gfn: 512, count: 1 }]))).toEqual([
      'steps[0].gfn: 512 is past guest "solo"\'s 512 pages (gfns 0 .. 511)',
    ]);
    // The last gfn and a whole guest are fine.
    expect(() => parseScenario(withSteps([{ op: 'madvise', guest: 'solo', gfn: 0, count: 512, advice: 'mergeable' }]))).not.toThrow();
  });

  it('refuses duplicate checkpoint labels', () => {
    expect(issuesOf(withSteps([{ op: 'checkpoint', label: 'a' }, { op: 'wait', ms: 1 }, { op: 'checkpoint', label: 'a' }]))).toEqual([
      'steps[2].label: "a" is also the label of steps[0]; labels must be unique',
    ]);
  });

  it('counts the steps\' waits in the timeline sample budget', () => {
    const small = { ...base, durationS: 0, sampleIntervalS: 0.001 };
    expect(() => parseScenario({ ...small, steps: [{ op: 'wait', ms: 99_000 }] })).not.toThrow();
    expect(issuesOf({ ...small, steps: [{ op: 'wait', ms: 99_000 }, { op: 'wait', ms: 2000 }] })[0]).toMatch(
      /^sampleIntervalS: gives 101\d\d\d timeline samples .* the steps' waits 101 s\); at most 100000$/,
    );
    // A wait_full_scans counts at its timeout.
    expect(issuesOf({ ...small, sampleIntervalS: 0.001, steps: [{ op: 'wait_full_scans', count: 1 }] })[0]).toMatch(/the steps' waits 120 s/);
  });

  it('exposes a step schema usable on its own', () => {
    expect(StepSchema.safeParse({ op: 'wait', ms: 5 }).success).toBe(true);
    expect(StepSchema.safeParse({ op: 'wait', ms: Infinity }).success).toBe(false);
  });
});
