import { HypervisorError, InvariantError } from '@pagevisor/types';
import type { z } from 'zod';
import { HYPERCALL_OPS, type HypercallOp, type HypercallRequest } from './request.js';
import { formatIssues, REQUEST_SCHEMAS, validateRequest } from './schema.js';
import { crossFieldRuleOf, typeRuleOf, valueRuleOf, type CrossFieldRule, type TypeRule } from './schema-rules.js';

/**
 * Validators compiled from the zod request schemas: per op, the same checks as its schema
 * (ranges, literals, array lengths, the custom rules of schema-rules.ts, the cross-field rules)
 * run as plain closures over plain data, without zod. The schemas stay the contract: everything
 * here is read from them when this module loads (a check zod has that this file does not know
 * stops the load, so nothing is silently left unchecked), and a property test holds the two paths
 * equal on random and fuzzed requests. Refusals are worded by schema.ts's own formatter, from
 * issues shaped like zod's, in zod's order and with zod's rule for which checks an issue stops:
 * - a range issue (too_big, too_small) lets every later check run;
 * - any other issue (a custom rule, a literal, a wrong type) stops the later checks of its
 *   value, and the cross-field checks of the request;
 * - an array longer than its maximum is refused whole, before its elements are looked at.
 */

type Issue = z.core.$ZodIssue;

/** A value rule, as the compiled validators call it. */
export type Rule = (value: unknown) => string | undefined;

/** One check of a number, in the order the schema runs them. */
export type NumberCheck =
  | { readonly kind: 'min'; readonly value: number }
  | { readonly kind: 'max'; readonly value: number }
  | { readonly kind: 'rule'; readonly rule: Rule };

/** What a schema accepts for a safe integer. */
export interface IntPlan {
  readonly kind: 'int';
  readonly optional: boolean;
  readonly checks: readonly NumberCheck[];
  /** The tightest bounds of its checks (-Infinity, Infinity when unbounded). */
  readonly min: number;
  readonly max: number;
  /** Its custom rules, in order. */
  readonly rules: readonly Rule[];
}

/** What a schema accepts for a `z.literal`. */
export interface LiteralPlan {
  readonly kind: 'literal';
  readonly optional: boolean;
  readonly values: readonly unknown[];
}

/** What a schema accepts for a byte buffer (`z.custom`, then custom rules on it). */
export interface BytesPlan {
  readonly kind: 'bytes';
  readonly optional: boolean;
  readonly type: TypeRule;
  readonly rules: readonly Rule[];
}

/** What a schema accepts for an array of safe integers. */
export interface ArrayPlan {
  readonly kind: 'array';
  readonly optional: boolean;
  readonly element: IntPlan;
  readonly maxItems: number;
}

export type ValuePlan = IntPlan | LiteralPlan | BytesPlan | ArrayPlan;

/** A request's validator: its properties' plans in the schema's order, then its cross-field rules. */
export interface CompiledValidator {
  readonly op: HypercallOp;
  readonly fields: readonly { readonly prop: string; readonly plan: ValuePlan }[];
  readonly crossField: readonly ((request: Readonly<Record<string, unknown>>) => ReturnType<CrossFieldRule>)[];
}

// ---- reading the schemas ---------------------------------------------------------------------

interface CheckNode {
  readonly _zod: { readonly check?: unknown; readonly def: { readonly check: string; readonly value?: unknown; readonly inclusive?: boolean; readonly maximum?: number } };
}

interface SchemaNode {
  readonly _zod: {
    readonly def: {
      readonly type: string;
      readonly format?: string;
      readonly checks?: readonly CheckNode[];
      readonly innerType?: SchemaNode;
      readonly element?: SchemaNode;
      readonly shape?: Readonly<Record<string, SchemaNode>>;
      readonly values?: readonly unknown[];
      /** A z.custom's predicate. */
      readonly fn?: unknown;
    };
  };
}

function unsupported(where: string, what: string): never {
  throw new InvariantError(`compiled validators: ${where}: ${what} is not one the compiled validators know (see compiled-validators.ts)`);
}

function customRule(where: string, c: CheckNode): Rule {
  const rule = valueRuleOf(c._zod.check);
  // A custom check written inline in the schema has no compiled twin: write it with valueCheck().
  if (rule === undefined) unsupported(where, 'a custom check not made by valueCheck (schema-rules.ts)');
  return rule as Rule;
}

function planOf(node: SchemaNode, where: string, optional = false): ValuePlan {
  const def = node._zod.def;
  const checks = def.checks ?? [];
  switch (def.type) {
    case 'optional':
      if (checks.length > 0) unsupported(where, 'a check on an optional');
      return planOf(def.innerType!, where, true);
    case 'number':
      return intPlan(node, where, optional);
    case 'literal':
      if (checks.length > 0) unsupported(where, 'a check on a literal');
      return { kind: 'literal', optional, values: def.values ?? [] };
    case 'custom': {
      const type = typeRuleOf(def.fn);
      if (type === undefined) unsupported(where, 'a z.custom not made by customType (schema-rules.ts)');
      return { kind: 'bytes', optional, type, rules: checks.map((c) => (c._zod.def.check === 'custom' ? customRule(where, c) : unsupported(where, `check ${c._zod.def.check} on a custom type`))) };
    }
    case 'array': {
      let maxItems = Infinity;
      for (const c of checks) {
        if (c._zod.def.check === 'max_length') maxItems = Math.min(maxItems, c._zod.def.maximum!);
        else unsupported(where, `array check ${c._zod.def.check}`);
      }
      const element = planOf(def.element!, `${where}[]`);
      if (element.kind !== 'int' || element.optional) unsupported(where, `an array of ${element.kind}`);
      return { kind: 'array', optional, element, maxItems };
    }
    default:
      return unsupported(where, `schema type ${def.type}`);
  }
}

function intPlan(node: SchemaNode, where: string, optional: boolean): IntPlan {
  const def = node._zod.def;
  // z.int(): safe integers. Other number formats (floats, int32, ...) are not used by the ABI.
  if (def.format !== 'safeint') unsupported(where, `number format ${String(def.format)}`);
  const checks: NumberCheck[] = [];
  let min = -Infinity;
  let max = Infinity;
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    if ((d.check === 'greater_than' || d.check === 'less_than') && d.inclusive === true && typeof d.value === 'number') {
      if (d.check === 'greater_than') {
        checks.push({ kind: 'min', value: d.value });
        min = Math.max(min, d.value);
      } else {
        checks.push({ kind: 'max', value: d.value });
        max = Math.min(max, d.value);
      }
    } else if (d.check === 'custom') {
      checks.push({ kind: 'rule', rule: customRule(where, c) });
    } else {
      unsupported(where, `number check ${d.check}${d.inclusive === false ? ' (exclusive)' : ''}`);
    }
  }
  const rules = checks.flatMap((c) => (c.kind === 'rule' ? [c.rule] : []));
  return { kind: 'int', optional, checks, min, max, rules };
}

/**
 * Compiles the validator of request schema `schema` (a `z.object`), for op `op`. Throws
 * InvariantError naming the property when the schema has a check or a type the compiled
 * validators do not know (a custom check written inline instead of with schema-rules.ts, a
 * number that is not `z.int()`, ...). Exported for tests; the ops' validators are compiled once.
 */
export function compileSchema(op: HypercallOp, schema: unknown): CompiledValidator {
  const def = (schema as SchemaNode)._zod.def;
  if (def.type !== 'object' || def.shape === undefined) unsupported(op, `schema type ${def.type}`);
  const fields = Object.entries(def.shape).map(([prop, node]) => ({ prop, plan: planOf(node, `${op}.${prop}`) }));
  const crossField = (def.checks ?? []).map((c) => {
    const rule = crossFieldRuleOf(c._zod.check);
    if (c._zod.def.check !== 'custom' || rule === undefined) unsupported(op, 'an object check not made by crossFieldCheck (schema-rules.ts)');
    return rule as CompiledValidator['crossField'][number];
  });
  return { op, fields, crossField };
}

const VALIDATORS = Object.fromEntries(HYPERCALL_OPS.map((op) => [op, compileSchema(op, REQUEST_SCHEMAS[op])])) as { readonly [K in HypercallOp]: CompiledValidator };

/** The compiled validator of `op`. */
export function compiledValidator(op: HypercallOp): CompiledValidator {
  return VALIDATORS[op];
}

// ---- running them ----------------------------------------------------------------------------

/** A value is not of its type (not a safe integer, not an array, missing): zod words those. */
export const WRONG_TYPE = 'wrong type';

type Path = readonly PropertyKey[];

function issue(fields: Record<string, unknown>): Issue {
  return fields as unknown as Issue;
}

/** Runs a number's checks in order; returns true when an issue stopped them (a custom rule's). */
function runNumberChecks(plan: IntPlan, value: number, path: Path, issues: Issue[]): boolean {
  for (const c of plan.checks) {
    if (c.kind === 'min') {
      if (value < c.value) issues.push(issue({ code: 'too_small', origin: 'number', minimum: c.value, inclusive: true, input: value, path }));
    } else if (c.kind === 'max') {
      if (value > c.value) issues.push(issue({ code: 'too_big', origin: 'number', maximum: c.value, inclusive: true, input: value, path }));
    } else {
      const message = c.rule(value);
      if (message !== undefined) {
        issues.push(issue({ code: 'custom', message, input: value, path }));
        return true;
      }
    }
  }
  return false;
}

/** Checks one value against its plan, appending issues; true when an issue stops later checks. */
function checkValue(plan: ValuePlan, value: unknown, path: Path, issues: Issue[]): boolean | typeof WRONG_TYPE {
  switch (plan.kind) {
    case 'int':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) return WRONG_TYPE;
      return runNumberChecks(plan, value, path, issues);
    case 'literal':
      if (plan.values.includes(value)) return false;
      issues.push(issue({ code: 'invalid_value', values: plan.values, input: value, path }));
      return true;
    case 'bytes': {
      if (!plan.type.test(value)) {
        issues.push(issue({ code: 'custom', message: plan.type.message, input: value, path }));
        return true;
      }
      for (const rule of plan.rules) {
        const message = rule(value);
        if (message !== undefined) {
          issues.push(issue({ code: 'custom', message, input: value, path }));
          return true;
        }
      }
      return false;
    }
    case 'array': {
      if (!Array.isArray(value)) return WRONG_TYPE;
      if (value.length > plan.maxItems) {
        issues.push(issue({ code: 'too_big', origin: 'array', maximum: plan.maxItems, inclusive: true, input: value, path }));
        return true;
      }
      let stopped = false;
      for (let i = 0; i < value.length; i++) {
        const r = checkValue(plan.element, value[i], [...path, i], issues);
        if (r === WRONG_TYPE) return WRONG_TYPE;
        stopped ||= r;
      }
      return stopped;
    }
  }
}

/**
 * The issues of `request` for validator `v`, in zod's order; WRONG_TYPE when a value is not of
 * its schema's type (those are worded by zod itself, see {@link checkRequest}).
 */
function issuesOf(v: CompiledValidator, request: Readonly<Record<string, unknown>>): Issue[] | typeof WRONG_TYPE {
  const issues: Issue[] = [];
  let stopped = false;
  for (const { prop, plan } of v.fields) {
    const value = request[prop];
    if (value === undefined && plan.optional) continue;
    const r = checkValue(plan, value, [prop], issues);
    if (r === WRONG_TYPE) return WRONG_TYPE;
    stopped ||= r;
  }
  if (!stopped) {
    for (const rule of v.crossField) {
      const found = rule(request);
      if (found !== undefined) {
        issues.push(issue({ code: 'custom', message: found.message, input: found.input, path: [found.path] }));
        break;
      }
    }
  }
  return issues;
}

/**
 * Throws the HypervisorError(EINVAL) that {@link validateRequest} throws for `request`, a
 * request of `v.op` that a faster test (the decoder's) found at fault. An InvariantError when
 * the compiled checks find nothing wrong: the two disagree, a bug.
 */
export function refuse(v: CompiledValidator, request: Readonly<Record<string, unknown>>): never {
  const issues = issuesOf(v, request);
  if (issues === WRONG_TYPE) {
    validateRequest(request);
    throw new InvariantError(`${v.op}: the compiled validator finds a value of the wrong type where the schema finds none`);
  }
  if (issues.length === 0) throw new InvariantError(`${v.op}: refused by the decoder's checks, but its compiled validator finds no issue`);
  throw new HypervisorError('EINVAL', v.op, formatIssues(v.op, issues));
}

/**
 * Validates `value` as a request with the compiled validators: accepts exactly what
 * {@link validateRequest} accepts and throws the same HypervisorError(EINVAL) (same detail)
 * otherwise. A value of the wrong type (not an object, an unknown op, a field that is not a safe
 * integer, ...) is left to zod to word. Unlike validateRequest it returns nothing: the request
 * is used as it is, unknown keys and all.
 */
export function checkRequest(value: unknown): asserts value is HypercallRequest {
  const op = typeof value === 'object' && value !== null ? (value as { op?: unknown }).op : undefined;
  const v = typeof op === 'string' && Object.hasOwn(VALIDATORS, op) ? VALIDATORS[op as HypercallOp] : undefined;
  if (v === undefined) {
    validateRequest(value);
    throw new InvariantError(`checkRequest: the schema accepts a request with op ${String(op)}`);
  }
  const detail = refusalOf(v, value as Readonly<Record<string, unknown>>);
  if (detail === WRONG_TYPE) {
    validateRequest(value);
    throw new InvariantError(`${v.op}: the compiled validator finds a value of the wrong type where the schema finds none`);
  }
  if (detail !== undefined) throw new HypervisorError('EINVAL', v.op, detail);
}

/**
 * What validator `v` says of `request`, an object: undefined when it is sound, else the detail
 * of its EINVAL (as `formatIssues` words zod's issues); WRONG_TYPE when a value is not of its
 * schema's type, which zod words. Exported for tests.
 */
export function refusalOf(v: CompiledValidator, request: Readonly<Record<string, unknown>>): string | typeof WRONG_TYPE | undefined {
  const issues = issuesOf(v, request);
  if (issues === WRONG_TYPE) return WRONG_TYPE;
  return issues.length === 0 ? undefined : formatIssues(v.op, issues);
}
