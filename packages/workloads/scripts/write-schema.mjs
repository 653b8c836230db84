// Writes scenario.schema.json, the JSON Schema of scenario files, from the zod schema (run after
// a build: npm run schema). A test checks the file is up to date.
import { writeFileSync } from 'node:fs';
import { scenarioJsonSchema } from '../dist/index.js';

const out = new URL('../scenario.schema.json', import.meta.url);
writeFileSync(out, `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`);
console.log(`wrote ${out.pathname}`);
