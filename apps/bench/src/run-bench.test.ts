import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from './cli.js';
import { compareMeasurements } from './compare.js';
import { HYPERCALL_OPS } from '@pagevisor/hypercall-abi';
import { RESULT_FORMAT, resultProblems, type BenchResult } from './result.js';
import { runBench } from './run-bench.js';
import { SIMULATOR_DIR } from './simulator-cli.js';

// Not timed assertions: only that a quick run measures every figure it should, each finite and
// positive, in the JSON shape --compare reads back.
describe('a quick run of the limits and micro suites', () => {
  let result: BenchResult;
  const repeats = 2;

  it('runs without errors', async () => {
    result = await runBench({ suites: ['micro'], quick: true, repeats });
    expect(result.errors).toEqual([]);
    expect(result.options.suites).toEqual(['limits', 'micro']);
  }, 180_000);

  it('gives every figure finite and > 0, with one sample per repeat (exact figures: one)', () => {
    expect(result.measurements.length).toBeGreaterThan(40);
    for (const m of result.measurements) {
      for (const x of [m.median, m.min, m.max, ...m.samples]) {
        expect(Number.isFinite(x), `${m.id}: ${x}`).toBe(true);
        expect(x, m.id).toBeGreaterThan(0);
      }
      expect(m.min).toBeLessThanOrEqual(m.median);
      expect(m.median).toBeLessThanOrEqual(m.max);
      expect(m.samples.length, m.id).toBe(m.exact === true ? 1 : repeats);
      if (m.limit !== undefined) expect(m.limit.ratio, m.id).toBeGreaterThan(0);
      if (m.native !== undefined) expect(m.native.ratio, m.id).toBeGreaterThan(0);
    }
  });

  it('has unique ids and measures every package and every ABI op', () => {
    const ids = result.measurements.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of [
      'limits.machine.copy',
      'limits.machine.hash',
      'limits.machine.compare',
      'limits.machine.copy-hash',
      'limits.file.write',
      'limits.file.read',
      'micro.frame-allocator.buddy-alloc-o0',
      'micro.frame-allocator.buddy-free-o9',
      'micro.frame-allocator.freelist-alloc-o0',
      'micro.p2m.get',
      'micro.p2m.set',
      'micro.dedup.inline-lookup-hit',
      'micro.dedup.inline-lookup-miss',
      'micro.dedup.inline-insert',
      'micro.dedup.ksm-scan',
      'micro.dedup.esx-scan',
      'micro.hypervisor.inline-write-new',
      'micro.hypervisor.copy-hash-paired',
      'micro.hypervisor.inline-write-dup',
      'micro.hypervisor.cow-fault',
      'micro.hypervisor.timeline-sample-1g',
      'micro.hypervisor.timeline-sample-1t',
      'micro.hypervisor.timeline-sample-ratio',
    ]) {
      expect(ids).toContain(id);
    }
    for (const op of HYPERCALL_OPS) expect(ids).toContain(`micro.hypercall-abi.${op}`);
  });

  it('takes the ratios to the limits measured in the same run', () => {
    const cow = result.measurements.find((m) => m.id === 'micro.hypervisor.cow-fault')!;
    const copy = result.measurements.find((m) => m.id === 'limits.machine.copy')!;
    expect(cow.limit).toEqual({ id: copy.id, name: 'copy', ratio: cow.median / copy.median });
  });

  it('takes the inline write target ratio from samples paired with its copy+hash bound', () => {
    const write = result.measurements.find((m) => m.id === 'micro.hypervisor.inline-write-new')!;
    const bound = result.measurements.find((m) => m.id === 'micro.hypervisor.copy-hash-paired')!;
    expect(write.limit).toMatchObject({ id: bound.id, name: 'copy+hash (paired)' });
    const ratios = write.samples.map((w, i) => w / bound.samples[i]!).sort((a, b) => a - b);
    expect(write.limit!.ratio).toBeGreaterThanOrEqual(ratios[0]!);
    expect(write.limit!.ratio).toBeLessThanOrEqual(ratios.at(-1)!);
  });

  // Where cc builds the C reference, every hot path carries its native ratio too; else none does and a note says why.
  it('takes the native ratios to the C reference of the same run, or notes why there are none', () => {
    const byId = new Map(result.measurements.map((m) => [m.id, m]));
    const nativeOf: Record<string, string> = {
      'micro.hypervisor.write-nodedup': 'limits.native.copy',
      'micro.hypervisor.inline-write-new': 'limits.native.copy-hash',
      'micro.hypervisor.inline-write-dup': 'limits.native.hash-compare',
      'micro.hypervisor.inline-write-dup-popular': 'limits.native.hash-compare',
      'micro.hypervisor.cow-fault': 'limits.native.copy',
      'micro.hypervisor.read': 'limits.native.copy',
      'micro.dedup.inline-lookup-hit': 'limits.native.compare',
      'micro.dedup.ksm-scan': 'limits.native.hash-cold',
      'micro.dedup.esx-scan': 'limits.native.hash-cold',
    };
    const notes = result.suites.find((s) => s.suite === 'micro')!.notes.join('\n');
    if (!byId.has('limits.native.copy')) {
      for (const id of Object.keys(nativeOf)) expect(byId.get(id)!.native, id).toBeUndefined();
      expect(notes).toMatch(/no native ratios in this run: the C reference was not measured \(.+\)/);
      return;
    }
    for (const [id, limitId] of Object.entries(nativeOf)) {
      const m = byId.get(id)!;
      const limit = byId.get(limitId)!;
      expect(m.native, id).toMatchObject({ id: limitId });
      expect(m.native!.ratio, id).toBeCloseTo(m.median / limit.median, 9);
      // KSM's checksum is its own (no JavaScript limit row measures it); the others have their JavaScript ratio too.
      if (id === 'micro.dedup.ksm-scan') expect(m.limit, id).toBeUndefined();
      else expect(m.limit, id).toBeDefined();
    }
    expect(byId.get('micro.hypervisor.inline-write-new')!.native!.name).toBe('native copy+XXH64');
    expect(notes).not.toContain('no native ratios');
    expect(result.targets.find((t) => t.key === 'inline-write-new')!.value).toBe(byId.get('micro.hypervisor.inline-write-new')!.native!.ratio);
    expect(result.targets.find((t) => t.key === 'inline-write-stored')!.value).toBe(byId.get('micro.hypervisor.inline-write-dup')!.native!.ratio);
  });

  it('times the timeline sample on both hosts, and judges the target on the per-repeat ratios', () => {
    const byId = new Map(result.measurements.map((m) => [m.id, m]));
    const ratio = byId.get('micro.hypervisor.timeline-sample-ratio')!;
    const small = byId.get('micro.hypervisor.timeline-sample-1g')!;
    const large = byId.get('micro.hypervisor.timeline-sample-1t')!;
    expect(ratio.samples).toHaveLength(small.samples.length);
    expect(large.samples).toHaveLength(small.samples.length);
    expect(ratio.unit).toBe('x');
    expect(result.targets.find((t) => t.key === 'timeline-sample')).toMatchObject({ value: ratio.median, source: ratio.id });
  });

  it('judges the targets it measured and leaves the others unmeasured', () => {
    const t = new Map(result.targets.map((x) => [x.key, x]));
    const native = result.measurements.some((m) => m.id === 'limits.native.copy-hash');
    expect(typeof t.get('inline-write-new')!.met).toBe(native ? 'boolean' : 'object');
    expect(typeof t.get('timeline-sample')!.met).toBe('boolean');
    expect(t.get('scale-cpu')).toMatchObject({ value: null, met: null });
    expect(typeof t.get('ksm-scan')!.met).toBe('boolean');
    expect(t.get('scale-wall')).toMatchObject({ value: null, met: null });
    expect(t.get('metadata')).toMatchObject({ value: null, met: null });
  });

  it('serialises to JSON that reads back as a result, with the machine described', () => {
    const back = JSON.parse(JSON.stringify(result)) as BenchResult;
    expect(resultProblems(back)).toEqual([]);
    expect(back.format).toBe(RESULT_FORMAT);
    expect(back.machine.cpus).toBeGreaterThan(0);
    expect(back.machine.node).toBe(process.version);
    expect(back.options.repeats).toEqual({ limits: repeats, micro: repeats });
    expect(compareMeasurements(back, result).entries).toHaveLength(result.measurements.length);
  });
});

describe('main, end to end on the limits suite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-main-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes --out, prints --json, and compares a later run with it', async () => {
    const out: string[] = [];
    const io = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: () => {} } };
    const file = join(dir, 'old.json');
    expect(await main(['--suite', 'limits', '--quick', '--repeats', '3', '--json', '--out', file], io)).toBe(0);
    const printed = JSON.parse(out.join('')) as BenchResult;
    const written = JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
    expect(written.measurements.map((m) => m.id)).toEqual(printed.measurements.map((m) => m.id));
    expect(printed.argv).toEqual(['--suite', 'limits', '--quick', '--repeats', '3', '--json', '--out', file]);

    out.length = 0;
    const md = join(dir, 'BENCH.md');
    expect(await main(['--suite', 'limits', '--quick', '--repeats', '3', '--compare', file, '--markdown', md], io)).toBe(0);
    const text = out.join('');
    expect(text).toContain(`== compared with ${file}`);
    const doc = readFileSync(md, 'utf8');
    expect(doc).toContain(`- **Command:** \`node apps/bench/dist/main.js --suite limits --quick --repeats 3 --compare ${file} --markdown ${md}\``);
    expect(doc).toMatch(/\| machine \| 4 KiB copy \| [\d,]+ pages\/s \|/);
    expect(doc).toContain(`## Comparison\n\n\`\`\`text\n== compared with ${file}`);
    // 7 limits, and 7 of the C reference where cc builds it.
    expect(written.measurements.length).toBe(written.measurements.some((m) => m.group === 'native') ? 14 : 7);
    expect(text).toMatch(new RegExp(`${written.measurements.length} in both: \\d+ regressions, \\d+ improvements, \\d+ unchanged; 0 only in the old run, 0 only in the new`));
    expect(text).toMatch(/\n(No regressions\.|Regressions \(\d+\): limits\..*)\n$/);
  }, 60_000);
});

describe('main, end to end on the quick scale suite: another checkout measured, then compared', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-main-scale-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // This checkout stands for the old one: what matters is the path the figures take.
  const root = resolve(SIMULATOR_DIR, '..', '..');

  it('records the other simulator, and judges the CPU target against it in the comparison', async () => {
    const out: string[] = [];
    const io = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: () => {} } };
    const old = join(dir, 'old.json');
    expect(await main(['--suite', 'scale', '--quick', '--simulator-root', root, '--out', old], io)).toBe(0);
    const first = JSON.parse(readFileSync(old, 'utf8')) as BenchResult;
    expect(first.options.simulatorRoot).toBe(root);
    expect(first.code?.simulator?.root).toBe(root);
    expect(out.join('')).toContain(`The scale suite ran the simulator of ${root}`);
    const cpu = first.measurements.find((m) => m.id === 'scale.scale-16x1g.process-cpu-s');
    expect(first.targets.find((t) => t.key === 'scale-cpu')).toMatchObject({ value: null, met: null });

    out.length = 0;
    const md = join(dir, 'BENCH.md');
    expect(await main(['--suite', 'scale', '--quick', '--compare', old, '--markdown', md], io)).toBe(0);
    const text = out.join('');
    const doc = readFileSync(md, 'utf8');
    if (cpu === undefined) {
      expect(text).toMatch(/n\/a\s+scale 16 x 1 GiB: CPU <= 0\.5 x the --compare run's \(not measured/);
      return;
    }
    // Quick runs are not judged: the figure is shown, with why.
    expect(text).toMatch(/targets judged against this run:\n\s+info\s+scale 16 x 1 GiB: CPU <= 0\.5 x the --compare run's: [\d.]+ x old \(.* in .*old\.json, the simulator of .*; not judged: quick run of a shrunk scenario\)/);
    expect(doc).toMatch(/\| scale 16 x 1 GiB: CPU <= 0\.5 x the --compare run's \| [\d.]+ x old \(.*\) \| not judged \|/);
    expect(doc).toContain('targets judged against this run:');
  }, 120_000);
});
