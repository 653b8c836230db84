import { z } from 'zod';
import { must } from './schema-helpers.js';

/**
 * A part of the host named in a scenario: a built-in's name or a plugin's module specifier
 * (`"lru"`, `"./my-policy.mjs"`, `"my-package"`), or an object naming it under `plugin` beside its
 * options (`{ "plugin": "./2q.mjs", "ghostFraction": 0.5 }`). The plugin checks its options.
 */
const WHAT = 'a name or module specifier (a non-empty string), or { "plugin": ..., ...options }';
export const PluginSpecSchema = z.union([z.string(must(WHAT)).min(1, must(WHAT)), z.looseObject({ plugin: z.string(must(WHAT)).min(1, must(WHAT)) })], must(WHAT));

/** A part named in a scenario (see {@link PluginSpecSchema}). */
export type PluginSpec = z.output<typeof PluginSpecSchema>;

/** The specifier and the options of a {@link PluginSpec}. */
export function specOf(spec: PluginSpec): { specifier: string; options: Record<string, unknown> } {
  if (typeof spec === 'string') return { specifier: spec, options: {} };
  const { plugin, ...options } = spec;
  return { specifier: plugin, options };
}
