// Writes scenario.schema.json and sweep.schema.json, the JSON Schemas of scenario and sweep
// files, from the zod schemas (run after a build: npm run schema). A test checks they are current.
import { writeFileSync } from 'node:fs';
import { scenarioJsonSchema, sweepJsonSchema } from '../dist/index.js';

for (const [file, schema] of [['scenario.schema.json', scenarioJsonSchema()], ['sweep.schema.json', sweepJsonSchema()]]) {
  const out = new URL(`../${file}`, import.meta.url);
  writeFileSync(out, `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote ${out.pathname}`);
}
