import { z } from 'zod';

/**
 * The checks of the request schemas that zod cannot describe as data (a custom check is an
 * opaque function to zod), each written once here and run by both paths: zod runs it through
 * the schema (schema.ts), and the compiled validators (compiled-validators.ts) find the same
 * function through the schema and run it themselves. Ranges, literals, array lengths and
 * optionality the compiled validators read from the schema's own definition.
 */

/** A rule on one value: what is wrong, in words (without the field's name), or undefined when sound. */
export type ValueRule = (value: never) => string | undefined;

/** What a rule across fields reports: the field at fault, its value, and what is wrong. */
export interface CrossFieldIssue {
  readonly path: string;
  readonly input: unknown;
  readonly message: string;
}

/** A rule across the fields of a request (offset + length within a page, ...): the issue, or undefined. */
export type CrossFieldRule = (request: never) => CrossFieldIssue | undefined;

/** A rule on the type of a value zod only knows as `z.custom` (a Uint8Array): the predicate and its message. */
export interface TypeRule {
  readonly test: (value: unknown) => boolean;
  readonly message: string;
}

type ZodCheckFn = (payload: z.core.ParsePayload<never>) => void;

const VALUE_RULES = new WeakMap<object, ValueRule>();
const CROSS_FIELD_RULES = new WeakMap<object, CrossFieldRule>();
const TYPE_RULES = new WeakMap<object, TypeRule>();

/** A zod check running `rule` on the value: a `custom` issue with the rule's message when it refuses. */
export function valueCheck<T>(rule: (value: T) => string | undefined): z.core.$ZodCheck<T> {
  const check = z.check<T>((ctx) => {
    const message = rule(ctx.value);
    if (message !== undefined) ctx.issues.push({ code: 'custom', input: ctx.value, message });
  });
  VALUE_RULES.set(check._zod.check, rule as ValueRule);
  return check;
}

/** A zod check running `rule` on a whole object: a `custom` issue at the rule's field when it refuses. */
export function crossFieldCheck<T>(rule: (request: T) => CrossFieldIssue | undefined): z.core.$ZodCheck<T> {
  const check = z.check<T>((ctx) => {
    const issue = rule(ctx.value);
    if (issue !== undefined) ctx.issues.push({ code: 'custom', path: [issue.path], input: issue.input, message: issue.message });
  });
  CROSS_FIELD_RULES.set(check._zod.check, rule as CrossFieldRule);
  return check;
}

/** A `z.custom` schema of values that pass `test`, refused with `message` otherwise. */
export function customType<T>(test: (value: unknown) => value is T, message: string): z.ZodCustom<T, T> {
  // Keyed by the predicate, which zod keeps in the definition of the schema and of its clones (.check, .optional).
  TYPE_RULES.set(test, { test, message });
  return z.custom<T>(test, { error: message });
}

/** The value rule a zod check runs (by the check's function), if it was made by {@link valueCheck}. */
export function valueRuleOf(checkFn: unknown): ValueRule | undefined {
  return typeof checkFn === 'function' ? VALUE_RULES.get(checkFn as ZodCheckFn) : undefined;
}

/** The cross-field rule a zod check runs, if it was made by {@link crossFieldCheck}. */
export function crossFieldRuleOf(checkFn: unknown): CrossFieldRule | undefined {
  return typeof checkFn === 'function' ? CROSS_FIELD_RULES.get(checkFn as ZodCheckFn) : undefined;
}

/** The type rule of a `z.custom` schema (by the predicate in its definition), if it was made by {@link customType}. */
export function typeRuleOf(predicate: unknown): TypeRule | undefined {
  return typeof predicate === 'function' ? TYPE_RULES.get(predicate as ZodCheckFn) : undefined;
}
