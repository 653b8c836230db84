#!/usr/bin/env node
// Does what a user does with the published packages: packs every publishable workspace package
// with `npm pack`, checks each tarball (its LICENSE, source maps that carry their sources, publint
// and attw), installs the tarballs into a fresh project outside the workspace, checks that plain
// Node (ESM) and TypeScript (NodeNext) import them, that `npx pagevisor --version` runs, and that
// the packages that need no Node bundle for a browser, then writes a dedup strategy of its own
// there and runs it through `npx pagevisor run` (the report must name it) and the benchmark runner
// (`npx pagevisor-bench --strategy`: the macro table must name it), and checks that a plugin whose
// create throws stops `pagevisor run` with exit 1 naming it. Last, `nx release --dry-run`:
// versions, changelog and `npm publish --dry-run` of every package, changing no file. Needs the
// packages built (npm run build).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const manifests = ['packages', 'apps'].flatMap((group) =>
  readdirSync(join(root, group)).map((name) => ({ dir: `${group}/${name}`, pkg: JSON.parse(readFileSync(join(root, group, name, 'package.json'), 'utf8')) })),
);
const published = manifests.filter((m) => m.pkg.private !== true);
const dir = mkdtempSync(join(tmpdir(), 'pagevisor-pack-'));
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
const check = (ok, what) => {
  if (!ok) throw new Error(`pack-check: ${what}`);
};

try {
  run('npm', ['pack', '--silent', '--pack-destination', dir, ...published.flatMap((m) => ['-w', m.dir])], root);
  const tarballs = readdirSync(dir).filter((f) => f.endsWith('.tgz'));
  check(tarballs.length === published.length, `expected ${published.length} tarballs, got ${tarballs.join(', ')}`);

  // 0. Each tarball: the repository's LICENSE, source maps with their sources (src/ is not
  // shipped) and no declaration maps (they could only point at src/), and what publint and attw
  // (ESM-only packages) say.
  const license = readFileSync(join(root, 'LICENSE'), 'utf8');
  for (const t of tarballs) {
    const files = run('tar', ['-tzf', join(dir, t)], dir).split('\n').filter((f) => f !== '');
    check(run('tar', ['-xzOf', join(dir, t), 'package/LICENSE'], dir) === license, `${t}: no LICENSE, or not the repository's`);
    check(!files.some((f) => f.endsWith('.d.ts.map')), `${t}: ships declaration maps that point at src/`);
    const map = files.find((f) => f.endsWith('.js.map'));
    check(map !== undefined, `${t}: no source map`);
    const parsed = JSON.parse(run('tar', ['-xzOf', join(dir, t), map], dir));
    check(Array.isArray(parsed.sourcesContent) && parsed.sourcesContent.every((c) => typeof c === 'string' && c.length > 0), `${t}: ${map} carries no sourcesContent`);
    run(process.execPath, [join(root, 'node_modules/publint/src/cli.js'), 'run', join(dir, t), '--strict', '--level', 'warning'], dir);
    // attw checks what a package exports; the benchmark runner has only a bin.
    const pkg = published.find((m) => `${m.pkg.name.slice(1).replace('/', '-')}-${m.pkg.version}.tgz` === t).pkg;
    if (pkg.exports !== undefined) run(process.execPath, [join(root, 'node_modules/@arethetypeswrong/cli/dist/index.js'), join(dir, t), '--profile', 'esm-only', '--format', 'ascii'], dir);
  }
  console.log(`pack-check: ${tarballs.length} tarballs carry LICENSE and source maps with their sources; publint and attw find nothing`);

  const app = join(dir, 'app');
  run('mkdir', ['-p', app], dir);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-check', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs.map((t) => join(dir, t))], app);

  // 1. Every package imports, from Node and from TypeScript (NodeNext), without the workspace.
  // (A package with only a bin, the benchmark runner, has nothing to import.)
  const libraries = published.filter((m) => m.pkg.exports !== undefined);
  const imports = libraries.map((m, i) => `import * as p${i} from '${m.pkg.name}';`).join('\n');
  const program = `${imports}
import { InlineDedup } from '@pagevisor/dedup';
import { createMachineMemory } from '@pagevisor/machine';
import { asMfn, DEFAULT_COST_MODEL, INVALID_MFN, PAGE_SIZE, type DedupHost, type FrameTable, type P2m } from '@pagevisor/types';

const loaded = [${libraries.map((_, i) => `p${i}`).join(', ')}].filter((m) => Object.keys(m).length > 0).length;
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
console.log('pack-check: imported ' + loaded + ' packages from tarballs; lookup hit mfn ' + hit);
`;
  writeFileSync(join(app, 'check.ts'), program);
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, skipLibCheck: false, types: [], outDir: 'out' }, files: ['check.ts'] }),
  );
  run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], app);
  process.stdout.write(run(process.execPath, ['out/check.js'], app));
  const npx = (args) => spawnSync('npx', ['--no-install', ...args], { cwd: app, encoding: 'utf8' });
  const version = npx(['pagevisor', '--version']);
  const simulator = published.find((m) => m.pkg.name === '@pagevisor/simulator').pkg;
  check(version.status === 0 && version.stdout.trim() === simulator.version, `npx pagevisor --version: exit ${version.status}, ${version.stdout}${version.stderr}`);
  console.log(`pack-check: npx pagevisor --version prints ${version.stdout.trim()}`);

  // The packages that need no Node (no engines field) bundle for a browser.
  const browser = published.filter((m) => m.pkg.engines === undefined).map((m) => m.pkg.name);
  check(browser.includes('@pagevisor/types') && browser.includes('@pagevisor/dedup'), `types and dedup must need no Node; browser packages: ${browser.join(', ')}`);
  writeFileSync(join(app, 'browser.mjs'), browser.map((name, i) => `import * as b${i} from '${name}';\nconsole.log(Object.keys(b${i}).length);`).join('\n'));
  run(join(root, 'node_modules/.bin/esbuild'), ['browser.mjs', '--bundle', '--platform=browser', '--format=esm', '--log-level=warning', '--outfile=out/browser.js'], app);
  console.log(`pack-check: ${browser.join(', ')} bundle for a browser (esbuild, platform browser)`);

  // 2. A strategy of the user's own, as a plugin file beside their scenario: whole-page writes of
  // zeros map the zero frame, nothing else is shared.
  writeFileSync(
    join(app, 'zero-only.mjs'),
    `import { definePlugin, INVALID_MFN, PAGE_SIZE } from '@pagevisor/types';

class ZeroOnly {
  name = 'zero-only';
  inline = true;
  populateZero = true;
  size = 0;
  attach(host) { this.host = host; }
  lookup(page) {
    for (let i = 0; i < PAGE_SIZE; i++) if (page[i] !== 0) return INVALID_MFN;
    return this.host.zeroMfn;
  }
  insert() {} // every insert is an offer: this strategy indexes nothing
  remove() {}
  contains() { return false; }
  metadataBytes() { return 0; }
  stats() { return {}; }
  audit() { return []; }
}

export default definePlugin({ kind: 'dedup', name: 'zero-only', create: () => new ZeroOnly() });
`,
  );
  const scenario = {
    name: 'mine',
    machine: { memoryMiB: 64 },
    dedup: { strategy: './zero-only.mjs' },
    durationS: 2,
    guests: [{ name: 'vm', count: 2, memoryMiB: 16, image: { id: 'os', fraction: 0.5 }, zeroFraction: 0.3, writeRatePagesPerS: 50, wholePageWriteFraction: 0.2 }],
  };
  writeFileSync(join(app, 's.json'), JSON.stringify(scenario));
  const ran = npx(['pagevisor', 'run', 's.json', '--json', '--verify']);
  check(ran.status === 0, `pagevisor run s.json exited ${ran.status}: ${ran.stderr}`);
  const report = JSON.parse(ran.stdout);
  check(report.dedup.strategy === 'zero-only' && report.dedup.plugins?.strategy === './zero-only.mjs', `the report names ${JSON.stringify(report.dedup.strategy)} / ${JSON.stringify(report.dedup.plugins)}`);
  check(report.totals.zeroPages > 0 && report.verify.passed === true, `zero pages ${report.totals.zeroPages}, verify passed ${report.verify?.passed}`);
  console.log(`pack-check: npx pagevisor run with the user's strategy: ${report.dedup.strategy} (${report.dedup.plugins.strategy}), ${report.totals.savedPct}% saved, ${report.verify.end.pagesVerified} pages verified`);

  // 3. A plugin that throws in create: exit 1, naming it, nothing run.
  writeFileSync(join(app, 'throws.mjs'), `export default { kind: 'dedup', name: 'throws', create() { throw new Error('out of ideas'); } };`);
  writeFileSync(join(app, 'bad.json'), JSON.stringify({ ...scenario, dedup: { strategy: './throws.mjs' } }));
  const bad = npx(['pagevisor', 'run', 'bad.json']);
  check(bad.status === 1 && bad.stderr.includes('plugin ./throws.mjs: create threw: out of ideas') && bad.stdout === '', `a throwing plugin: exit ${bad.status}, ${bad.stderr}`);
  console.log('pack-check: a plugin that throws in create: exit 1, named');

  // 4. The benchmark runner puts the user's strategies beside the built-ins. zero-only cannot fit
  // the default scenario (it needs the image shared): those runs fail and are listed, exit 2.
  writeFileSync(
    join(app, 'my-hash-map.mjs'),
    `import { HashMapDedup } from '@pagevisor/dedup';
export default { kind: 'dedup', name: 'my-hash-map', create: () => new HashMapDedup() };
`,
  );
  const bench = npx(['pagevisor-bench', '--suite', 'macro', '--quick', '--repeats', '1', '--strategy', './zero-only.mjs', '--strategy', './my-hash-map.mjs']);
  const errors = bench.stdout.split('ERRORS')[1]?.split('\n').filter((l) => l.startsWith('  macro: ')) ?? [];
  check(bench.status === 2 && errors.length > 0 && errors.every((l) => l.includes('dedup zero-only')), `pagevisor-bench exited ${bench.status}, errors: ${errors.join('; ')}\n${bench.stderr.split('\n').slice(-8).join('\n')}`);
  for (const name of ['zero-only', 'my-hash-map', 'ksm']) check(bench.stdout.includes(`static-compare, dedup ${name}`), `the macro table does not name ${name}:\n${bench.stdout}`);
  console.log(`pack-check: npx pagevisor-bench --strategy ./zero-only.mjs --strategy ./my-hash-map.mjs: the macro table names both beside the built-ins; ${errors.length} runs of zero-only failed, as they must`);

  // 5. The release tool, as a release would run it, changing nothing: versions, the changelog,
  // and npm publish --dry-run of every package.
  const before = run('git', ['status', '--porcelain'], root);
  const release = spawnSync('npx', ['--no-install', 'nx', 'release', '0.2.0', '--dry-run', '--first-release', '--yes'], { cwd: root, encoding: 'utf8', env: { ...process.env, NX_DAEMON: 'false' } });
  check(release.status === 0, `nx release --dry-run exited ${release.status}:\n${release.stdout.slice(-2000)}${release.stderr.slice(-2000)}`);
  const wouldPublish = release.stdout.split('\n').filter((l) => l.startsWith('Would publish to ')).length;
  check(wouldPublish === published.length, `nx release --dry-run would publish ${wouldPublish} packages, not ${published.length}`);
  check(release.stdout.includes('CHANGELOG.md'), 'nx release --dry-run wrote no changelog entry');
  check(run('git', ['status', '--porcelain'], root) === before, 'nx release --dry-run changed files');
  console.log(`pack-check: nx release 0.2.0 --dry-run: versions, changelog and npm publish --dry-run of ${wouldPublish} packages, no file changed`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
