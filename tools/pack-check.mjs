#!/usr/bin/env node
// Packs @pagevisor/types, @pagevisor/machine and @pagevisor/dedup with `npm pack`, installs the
// tarballs into a fresh project outside the workspace, and checks that plain Node (ESM) and
// TypeScript (NodeNext) can import and use them. Needs the packages built (npm run build).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const packages = ['types', 'machine', 'dedup'];
const dir = mkdtempSync(join(tmpdir(), 'pagevisor-pack-'));
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

try {
  run('npm', ['pack', '--silent', '--pack-destination', dir, ...packages.flatMap((p) => ['-w', `packages/${p}`])], root);
  const tarballs = readdirSync(dir).filter((f) => f.endsWith('.tgz'));
  if (tarballs.length !== packages.length) throw new Error(`expected ${packages.length} tarballs, got ${tarballs.join(', ')}`);

  const app = join(dir, 'app');
  run('mkdir', ['-p', app], dir);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-check', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs.map((t) => join(dir, t))], app);

  const program = `
import { InlineDedup, NoDedup } from '@pagevisor/dedup';
import { createMachineMemory } from '@pagevisor/machine';
import { asDomId, asGfn, asMfn, DEFAULT_COST_MODEL, INVALID_MFN, PAGE_SIZE, type DedupHost, type FrameTable, type P2m } from '@pagevisor/types';

const memory = await createMachineMemory({ frames: 16 });
const page = new Uint8Array(PAGE_SIZE).fill(7);
memory.write(asMfn(3), 0, page, 0, PAGE_SIZE);
// Only what the inline index asks of its host: memory, the frame table's isFree, the zero frame.
const frames = { isFree: () => false, totalFrames: 16 } as unknown as FrameTable;
const refuse = (): never => { throw new Error('not used by the inline index'); };
const host: DedupHost = {
  memory, frames, zeroMfn: asMfn(0), p2m: {} as P2m, costModel: DEFAULT_COST_MODEL, numaNodes: 1,
  nodeOf: () => 0, merge: refuse, unmerge: refuse, chargeCpu: () => {}, groupOf: () => 0,
};
const dedup = new InlineDedup();
dedup.attach(host);
dedup.insert(asMfn(3), memory.hashFrame(asMfn(3)), 'miss');
const hit = dedup.lookup(page, memory.hashPage(page));
const miss = dedup.lookup(new Uint8Array(PAGE_SIZE).fill(8), memory.hashPage(new Uint8Array(PAGE_SIZE).fill(8)));
if (hit !== 3 || miss !== INVALID_MFN) throw new Error('dedup from the tarball gave hit ' + hit + ', miss ' + miss);
if (new NoDedup().inline) throw new Error('NoDedup should not be inline');
console.log('pack-check: imported @pagevisor/types, machine and dedup from tarballs; lookup hit mfn', hit, asDomId(1), asGfn(2));
`;
  writeFileSync(join(app, 'check.ts'), program);
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, types: [], outDir: 'out' }, files: ['check.ts'] }),
  );
  run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], app);
  process.stdout.write(run(process.execPath, ['out/check.js'], app));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
