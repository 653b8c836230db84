import { z } from 'zod';

/**
 * Error message for a field: "missing; must be ..." when the key is absent, "must be ..." when it
 * holds the wrong thing. zod reports both as `invalid_type`; only the input tells them apart.
 */
export function must(what: string): { error: (issue: { input?: unknown }) => string } {
  return {
    error: (issue) => (issue.input === undefined ? `missing; must be ${what}` : `must be ${what}`),
  };
}

/** An integer in [min, max]. */
export function intIn(min: number, max: number, what: string) {
  const m = must(what);
  return z.number(m).int(m).min(min, m).max(max, m);
}

/** An integer >= 1. */
export function positiveInt() {
  return intIn(1, Number.MAX_SAFE_INTEGER, 'a positive integer');
}

/** An integer >= 0. */
export function nonNegativeInt() {
  return intIn(0, Number.MAX_SAFE_INTEGER, 'an integer >= 0');
}

/** A number in [0, 1]. */
export function fraction() {
  const m = must('a number from 0 to 1');
  return z.number(m).min(0, m).max(1, m);
}

/** A finite number >= 0. */
export function nonNegative() {
  const m = must('a number >= 0');
  return z.number(m).min(0, m);
}

/** A finite number > 0. */
export function positive() {
  const m = must('a number > 0');
  return z.number(m).positive(m);
}

/** A non-empty string. */
export function name() {
  const m = must('a non-empty string');
  return z.string(m).min(1, m);
}

/** A boolean. */
export function bool() {
  return z.boolean(must('true or false'));
}

/** An object that refuses unknown fields. */
export function object<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.strictObject(shape, must('an object'));
}

/**
 * Cross-field checks run only on fields that passed their own checks: a sum over a malformed
 * guest list would say nothing useful, or throw.
 */
export const whenValid = { when: (payload: { issues: readonly unknown[] }) => payload.issues.length === 0 };
