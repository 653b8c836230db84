#!/usr/bin/env node
// Writes packages/hypercall-abi/ABI.md from the built package's renderAbiDoc(). Build first:
//   npx nx run hypercall-abi:build && node packages/hypercall-abi/scripts/write-abi-doc.mjs
// (the root script `npm run abi-doc` does both). With --check it writes nothing and exits 1 when
// ABI.md is not what the tables give.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = new URL('../dist/index.js', import.meta.url);
const target = fileURLToPath(new URL('../ABI.md', import.meta.url));

if (!existsSync(fileURLToPath(dist))) {
  console.error(`write-abi-doc: ${fileURLToPath(dist)} is missing; run \`npx nx run hypercall-abi:build\` first`);
  process.exit(1);
}
const { renderAbiDoc } = await import(dist.href);
if (typeof renderAbiDoc !== 'function') {
  console.error('write-abi-doc: the built package has no renderAbiDoc; rebuild with `npx nx run hypercall-abi:build`');
  process.exit(1);
}
const doc = renderAbiDoc();
const current = existsSync(target) ? readFileSync(target, 'utf8') : undefined;

if (process.argv.includes('--check')) {
  if (current !== doc) {
    console.error(`write-abi-doc: ${target} is out of date; run \`npm run abi-doc\``);
    process.exit(1);
  }
  console.log(`write-abi-doc: ${target} is up to date`);
} else if (current === doc) {
  console.log(`write-abi-doc: ${target} unchanged`);
} else {
  writeFileSync(target, doc);
  console.log(`write-abi-doc: wrote ${target}`);
}
