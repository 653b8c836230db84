import { z } from 'zod';
import { ScenarioSchema } from './scenario.js';

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
