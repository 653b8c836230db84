import { z } from 'zod';
import { ScenarioSchema } from './scenario.js';
import { SweepSchema } from './sweep.js';

/**
 * The JSON Schema (draft 2020-12) of scenario files, generated from {@link ScenarioSchema}: what
 * a file may say (defaults optional), for editors to complete and check. The zod schema stays
 * the contract: the checks across fields (names unique, steps inside their guests, the sample
 * cap) are its alone. The package ships it as `scenario.schema.json`.
 */
export function scenarioJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ScenarioSchema, { io: 'input', unrepresentable: 'any' });
  return { ...schema, title: 'pagevisor scenario', description: 'A simulation: a machine, a dedup strategy, the guests that run on it and the steps run once they have booted (see @pagevisor/workloads).' };
}

/** The JSON Schema of sweep files (see {@link SweepSchema}); an inline base is checked as a scenario only when the sweep expands. The package ships it as `sweep.schema.json`. */
export function sweepJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(SweepSchema, { io: 'input', unrepresentable: 'any' });
  return { ...schema, title: 'pagevisor sweep', description: 'A grid of scenarios: a base scenario and axes, each a dotted scenario path with the values it takes (see @pagevisor/workloads).' };
}
