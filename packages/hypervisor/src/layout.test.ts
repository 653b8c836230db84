import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// The package's files import one another without a circle: the core at the bottom, one file per
// subsystem over it, the Hypervisor class and the hypercall handler on top (README, "Layout").
const dir = new URL('.', import.meta.url);

function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
    const text = readFileSync(new URL(file, dir), 'utf8');
    graph.set(file, [...text.matchAll(/from '\.\/([^']+)\.js'/g)].map((m) => `${m[1]}.ts`));
  }
  return graph;
}

/** Every circle of imports, as the files along it. */
function circles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

describe('package layout', () => {
  it('finds a circle when there is one', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
    ]);
    expect(circles(graph)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
  });

  it('has no import circle among its source files', () => {
    const graph = importGraph();
    expect(graph.get('hypervisor.ts')).toContain('core.ts');
    expect(circles(graph)).toEqual([]);
  });

  it('keeps the core free of the subsystems', () => {
    const subsystems = ['memory-ops.ts', 'access.ts', 'sharing.ts', 'paging.ts', 'dedup-host.ts', 'stats.ts', 'audit.ts', 'abi-handler.ts', 'hypervisor.ts'];
    for (const file of subsystems) expect(importGraph().get('core.ts')).not.toContain(file);
  });
});
