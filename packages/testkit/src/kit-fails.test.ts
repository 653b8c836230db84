import { describe, expect, it } from 'vitest';
import { HashMapDedup } from '@pagevisor/dedup';
import { buddyAllocatorPlugin, FreeListAllocator } from '@pagevisor/frame-allocator';
import { createEvictionPolicy } from '@pagevisor/swap';
import { definePlugin, INVALID_MFN, PluginError, type DedupHost, type DedupIndex, type EvictionPolicy, type FrameAllocator, type Mfn } from '@pagevisor/types';
import { checkAllocator, checkDedupStrategy, checkEvictionPolicy, COVERAGE_MIN_RUNS, configurationsFor, DEFAULT_SEED } from './index.js';

// The kit must fail broken parts, naming the plugin, the configuration, the seed and the step,
// and pass correct ones that do nothing useful (reporting that they did nothing).

/** A HashMapDedup with `change` applied to one instance (a broken strategy, as a plugin). */
function dedupPlugin(name: string, change: (d: HashMapDedup) => void) {
  return definePlugin({
    kind: 'dedup',
    name,
    create: () => {
      const d = new HashMapDedup();
      change(d);
      return d;
    },
  });
}

/** Runs `check`, which must reject; returns the error's message. */
async function failure(check: Promise<unknown>): Promise<string> {
  try {
    await check;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error('the kit passed a broken plugin');
}

const quick = { runs: 10, configurations: ['basic'], shrink: false } as const;

describe('the kit fails a broken dedup strategy', () => {
  it('whose lookup returns a frame that is free (it keeps frames after remove, where contains() does not see them)', async () => {
    const broken = dedupPlugin('keeps-removed', (d) => {
      const held = new Map<number, Mfn>();
      const lookup = d.lookup.bind(d);
      const insert = d.insert.bind(d);
      d.insert = (mfn, hash, reason) => {
        held.set(hash, mfn);
        insert(mfn, hash, reason);
      };
      // The frame last offered with the hash, before what the index holds now.
      d.lookup = (page, hash) => held.get(hash) ?? lookup(page, hash);
    });
    const message = await failure(checkDedupStrategy(broken, { ...quick, runs: 30 }));
    expect(message).toContain('dedup plugin "keeps-removed"');
    expect(message).toContain('configuration "basic"');
    expect(message).toContain(`seed ${DEFAULT_SEED}`);
    expect(message).toMatch(/lookup returned frame \d+, (which is free|whose content differs from the page looked up)/);
    // The failing step, as fast-check shrank it, and the counterexample.
    expect(message).toMatch(/step \d+ \{"kind":"writePage"/);
    expect(message).toMatch(/counterexample \(sequence \d+ of 30, not shrunk; fast-check path "\d+"\), \d+ operations:\n {4}0: \{"kind":"create"/);
  });

  it('that holds a frame after remove (and says so)', async () => {
    const broken = dedupPlugin('forgets-nothing', (d) => {
      d.remove = () => {};
    });
    const message = await failure(checkDedupStrategy(broken, { ...quick, shrink: true }));
    expect(message).toContain('dedup plugin "forgets-nothing" in configuration "basic" failed');
    expect(message).toMatch(/still contains frame \d+ after remove/);
    // Shrunk: the failing step and a sequence little longer than the generator's shortest (20
    // ops after three domains are created and populated).
    expect(message).toMatch(/counterexample \(sequence \d+ of 10, shrunk \d+ times?/);
    const ops = message.split('\n').filter((l) => /^ {4}\d+: \{/.test(l)).length;
    expect(ops).toBeGreaterThan(0);
    expect(ops).toBeLessThan(40);
  });

  it('whose lookup returns a frame of other content', async () => {
    const broken = dedupPlugin('any-frame', (d) => {
      let last: Mfn = INVALID_MFN;
      const insert = d.insert.bind(d);
      d.insert = (mfn, hash, reason) => {
        last = mfn;
        insert(mfn, hash, reason);
      };
      d.lookup = () => last;
    });
    const message = await failure(checkDedupStrategy(broken, quick));
    expect(message).toContain('dedup plugin "any-frame"');
    expect(message).toMatch(/lookup returned frame \d+, (whose content differs|which is free)/);
  });

  it('whose audit reports a problem', async () => {
    const broken = dedupPlugin('self-doubting', (d) => {
      d.audit = () => (d.size > 3 ? ['more than 3 frames held'] : []);
    });
    const message = await failure(checkDedupStrategy(broken, quick));
    expect(message).toContain('dedup plugin "self-doubting"');
    expect(message).toMatch(/step \d+ .*: audit: hash-map: more than 3 frames held/);
  });

  it('that throws', async () => {
    const broken = dedupPlugin('thrower', (d) => {
      const insert = d.insert.bind(d);
      d.insert = (mfn, hash, reason) => {
        if (reason === 'miss') throw new Error('not today');
        insert(mfn, hash, reason);
      };
    });
    const message = await failure(checkDedupStrategy(broken, quick));
    expect(message).toContain('dedup plugin "thrower"');
    expect(message).toMatch(/step \d+ .*: threw Error: not today/);
  });

  it('that refuses its options, or is not a dedup plugin', async () => {
    const picky = definePlugin({
      kind: 'dedup',
      name: 'picky',
      options: (o) => {
        if (o['size'] === undefined) throw new Error('size is required');
        return o;
      },
      create: () => new HashMapDedup(),
    });
    const refused = await failure(checkDedupStrategy(picky, quick));
    expect(refused).toBe('testkit: dedup plugin "picky" in configuration "basic": plugin picky: options refused: size is required');
    const failing = definePlugin({
      kind: 'dedup',
      name: 'unattachable',
      create: () => Object.assign(new HashMapDedup(), { attach: () => { throw new Error('no host for me'); } }),
    });
    expect(await failure(checkDedupStrategy(failing, quick))).toBe('testkit: dedup plugin "unattachable" in configuration "basic": building the host threw Error: no host for me');
    await expect(checkDedupStrategy(picky, { ...quick, options: { size: 3 } })).resolves.toBeDefined();
    await expect(checkDedupStrategy(buddyAllocatorPlugin as never, quick)).rejects.toThrow(PluginError);
  });
});

describe('the kit passes a correct strategy that merges nothing, and says so', () => {
  it('a strategy that declines every offer', async () => {
    const idle = definePlugin({
      kind: 'dedup',
      name: 'idle',
      create: (): DedupIndex => {
        let host: DedupHost | undefined;
        return {
          name: 'idle',
          inline: true,
          populateZero: false,
          attach: (h) => {
            host = h;
          },
          lookup: () => INVALID_MFN,
          insert: () => {},
          remove: () => {},
          contains: () => false,
          size: 0,
          metadataBytes: () => 0,
          stats: () => ({}),
          audit: () => (host === undefined ? ['not attached'] : []),
        };
      },
    });
    const runs = COVERAGE_MIN_RUNS;
    const report = await checkDedupStrategy(idle, { runs, configurations: ['basic', 'trust groups, index per group', 'swap: shared area, clock'] });
    expect(report.plugin).toBe('idle');
    for (const c of report.configurations) {
      expect([c.name, c.runsMerged, c.useful, c.coverage]).toEqual([c.name, 0, false, { checked: true, missing: [] }]);
      // A round of `runs` sequences, and more rounds while the generator had not met all it aims at.
      expect(c.sequences % runs, c.name).toBe(0);
      // The sharing hypercalls share pages whatever the strategy does.
      expect(c.runsSharing, c.name).toBeGreaterThan(0);
    }
    expect(report.configurations.find((c) => c.name === 'swap: shared area, clock')!.runsSwappedIn).toBeGreaterThan(0);
  }, 60_000);
});

describe('the kit fails a broken eviction policy', () => {
  /** The clock policy with `change` applied to one instance. */
  const policyPlugin = (name: string, change: (p: EvictionPolicy) => void) =>
    definePlugin({
      kind: 'eviction-policy',
      name,
      create: (_o, context) => {
        const p = createEvictionPolicy('clock', { frames: context.frames, seed: context.seed });
        change(p);
        return p;
      },
    });

  it('that returns a victim it was never given', async () => {
    const broken = policyPlugin('inventive', (p) => {
      const victim = p.victim.bind(p);
      let calls = 0;
      p.victim = () => (++calls % 7 === 0 ? (0 as Mfn) : victim());
    });
    const message = await failure(checkEvictionPolicy(broken, { runs: 20, shrink: false }));
    expect(message).toContain('eviction-policy plugin "inventive" in configuration "alone: 1 frame" failed');
    expect(message).toMatch(/victim\(\) returned frame 0, which (it was never given|was removed since it was inserted)/);
  });

  it('that returns a victim already removed (on a host too)', async () => {
    const broken = policyPlugin('sticky', (p) => {
      let removed: Mfn = INVALID_MFN;
      const remove = p.remove.bind(p);
      const victim = p.victim.bind(p);
      p.remove = (mfn) => {
        removed = mfn;
        remove(mfn);
      };
      p.victim = () => (removed !== INVALID_MFN && p.size > 0 ? removed : victim());
    });
    const hostOnly = configurationsFor('eviction-policy').filter((c) => c.mode === 'host').map((c) => c.name);
    for (const configurations of [undefined, hostOnly.slice(0, 1)]) {
      const message = await failure(checkEvictionPolicy(broken, { runs: 10, configurations, shrink: false }));
      expect(message).toContain(`eviction-policy plugin "sticky" in configuration "${configurations?.[0] ?? 'alone: 48 frames'}" failed`);
      expect(message).toMatch(/victim\(\) returned frame \d+, which was removed since it was inserted/);
    }
  });

  it('whose size is wrong', async () => {
    const broken = policyPlugin('miscounts', (p) => {
      Object.defineProperty(p, 'size', { get: () => 0 });
    });
    const message = await failure(checkEvictionPolicy(broken, { runs: 10, shrink: false }));
    expect(message).toContain('eviction-policy plugin "miscounts"');
    expect(message).toMatch(/size is 0, but 1 frames are tracked/);
  });
});

describe('the kit fails a broken allocator', () => {
  /** A free-list allocator with `change` applied to one instance. */
  const allocatorPlugin = (name: string, change: (a: FrameAllocator) => void) =>
    definePlugin({
      kind: 'allocator',
      name,
      create: (_o, context) => {
        const a = new FreeListAllocator(context.frames);
        change(a);
        return a;
      },
    });

  it('that hands out a frame twice', async () => {
    const broken = allocatorPlugin('generous', (a) => {
      const alloc = a.alloc.bind(a);
      let last: Mfn = INVALID_MFN;
      let calls = 0;
      a.alloc = (order) => {
        if (++calls % 5 === 0 && last !== INVALID_MFN && a.freeFrames > 0) return last;
        last = alloc(order);
        return last;
      };
    });
    const message = await failure(checkAllocator(broken, { runs: 20, configurations: ['alone: 37 frames'] }));
    expect(message).toContain('allocator plugin "generous" in configuration "alone: 37 frames" failed');
    expect(message).toMatch(/alloc\(0\) handed out frame \d+ \(block \d+\.\.\d+\), which was handed out at step \d+ and not freed since/);
    // On a host, the frame table sees it too.
    const onHost = await failure(checkAllocator(broken, { runs: 10, configurations: ['basic'], shrink: false }));
    expect(onHost).toContain('allocator plugin "generous" in configuration "basic" failed');
    expect(onHost).toMatch(/allocator handed out frame \d+ still owned/);
  });

  it('whose freeFrames is off', async () => {
    const broken = allocatorPlugin('optimist', (a) => {
      const free = Object.getOwnPropertyDescriptor(FreeListAllocator.prototype, 'freeFrames')!.get!;
      Object.defineProperty(a, 'freeFrames', { get: () => free.call(a) + 1 });
    });
    const message = await failure(checkAllocator(broken, { runs: 10, shrink: false }));
    expect(message).toContain('allocator plugin "optimist" in configuration "alone: 1 frame" failed');
    expect(message).toMatch(/create: freeFrames is 2, but 1 frames are free/);
  });

  it('of another size than the machine', async () => {
    const broken = definePlugin({ kind: 'allocator', name: 'fixed', create: () => new FreeListAllocator(64) });
    const message = await failure(checkAllocator(broken, { runs: 10 }));
    expect(message).toContain('allocator plugin "fixed" in configuration "alone: 1 frame": plugin fixed: create returned an allocator of 64 frames for a machine of 1');
  });
});

describe('the options of the kit', () => {
  it('names the configurations when a filter names one that does not exist, or leaves none', async () => {
    await expect(checkAllocator(buddyAllocatorPlugin, { configurations: ['nope'] })).rejects.toThrow(/no allocator configuration "nope"; the configurations are: "alone: 1 frame", .*"basic"/);
    await expect(checkAllocator(buddyAllocatorPlugin, { configurations: () => false })).rejects.toThrow(/leaves none of the 18 allocator configurations/);
    await expect(checkAllocator(buddyAllocatorPlugin, { runs: 0 })).rejects.toThrow(RangeError);
  });

  it('reports what ran: sequences, operations, applied and refused counts by kind and errno; coverage not required below COVERAGE_MIN_RUNS', async () => {
    const report = await checkAllocator(buddyAllocatorPlugin, { runs: 3, configurations: (n) => n === 'alone: 64 frames' || n === 'tmem', seed: 7 });
    expect([report.kind, report.plugin, report.seed, report.runs]).toEqual(['allocator', 'buddy', 7, 3]);
    expect(report.configurations.map((c) => [c.name, c.mode, c.sequences, c.coverage.checked])).toEqual([
      ['alone: 64 frames', 'alone', 3, false],
      ['tmem', 'host', 3, false],
    ]);
    const [alone, tmem] = report.configurations;
    expect(alone!.operations).toBeGreaterThan(0);
    expect(alone!.applied['alloc']).toBeGreaterThan(0);
    expect(tmem!.operations).toBeGreaterThan(3 * 20);
    expect(Object.values(tmem!.applied).reduce((a, b) => a + b, 0) + Object.values(tmem!.refused).reduce((a, b) => a + b, 0)).toBe(tmem!.operations);
  });
});
