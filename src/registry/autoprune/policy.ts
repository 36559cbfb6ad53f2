/**
 * What an auto-prune policy may say, parsed once for the API, the CLI and the configuration's default
 * policies, with the refusals Quay's clients know ("Invalid method provided", "Invalid value given for
 * method type", "tag_pattern cannot be empty").
 *
 *   number_of_tags  value: a whole number of tags > 0 (`10`, or "10")        keep the N newest
 *   creation_date   value: a duration with units ("7d", "2w", "12h", "1y")   prune tags older than that
 *   tag_pattern     a JavaScript regular expression, searched (unanchored) in the tag name; null = all
 *   tag_pattern_matches  true (default): the policy prunes only among the tags the pattern matches;
 *                        false: only among the tags it does not match
 */
import { z } from 'zod';
import { parseDuration } from '../../config/units.js';
import type { PolicyFields, PolicyMethod } from '../../db/autoprune-store.js';
import { AccountError } from '../accounts/account-error.js';

export type { PolicyFields, PolicyMethod };

export const POLICY_METHODS: readonly PolicyMethod[] = ['number_of_tags', 'creation_date'];
export const MAX_TAGS_TO_KEEP = 1_000_000;
/** A hundred years. */
export const MAX_AGE_S = 100 * 365 * 86_400;
export const MAX_PATTERN_LENGTH = 512;

export const INVALID_METHOD = 'Invalid method provided';
export const INVALID_VALUE = 'Invalid value given for method type';
export const DUPLICATE_POLICY = 'Existing policy with same values for this namespace, duplicate policies are not permitted';

/** A policy as given (the API's camelCase and the configuration's snake_case both map here). */
export interface PolicyInput {
  method?: unknown;
  value?: unknown;
  tagPattern?: unknown;
  tagPatternMatches?: unknown;
}

const YEAR_S = 365 * 86_400;

const method = z.enum(POLICY_METHODS as [PolicyMethod, ...PolicyMethod[]], {
  error: (i) => `${INVALID_METHOD}: ${i.input === undefined ? 'method is required' : `${JSON.stringify(i.input)?.slice(0, 60)} is not one`} (number_of_tags or creation_date)`,
});

const tagPattern = z
  .string({ error: 'tag_pattern must be string' })
  .trim()
  .min(1, { error: 'tag_pattern cannot be empty' })
  .max(MAX_PATTERN_LENGTH, { error: `tag_pattern is at most ${MAX_PATTERN_LENGTH} characters` })
  .superRefine((p, ctx) => {
    try {
      new RegExp(p);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `tag_pattern is not a valid regular expression: ${(err as Error).message}` });
    }
  });

const Input = z.object({
  method,
  value: z.unknown().optional(),
  tagPattern: tagPattern.nullish(),
  tagPatternMatches: z.boolean({ error: 'tagPatternMatches must be true or false' }).nullish(),
});

/** The stored fields of a valid policy; AccountError (400) naming what is wrong otherwise. */
export function parsePolicy(input: PolicyInput): PolicyFields {
  const r = Input.safeParse(input ?? {});
  if (!r.success) throw invalid([...new Set(r.error.issues.map((i) => i.message))].join('; '));
  const { value, valueText } = parseValue(r.data.method, r.data.value);
  return { method: r.data.method, value, valueText, tagPattern: r.data.tagPattern ?? null, tagPatternMatches: r.data.tagPatternMatches ?? true };
}

function parseValue(m: PolicyMethod, v: unknown): { value: number; valueText: string | null } {
  if (m === 'number_of_tags') {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n <= 0 || n > MAX_TAGS_TO_KEEP) {
      throw invalid(`${INVALID_VALUE} number_of_tags: give the number of tags to keep, a whole number from 1 to ${MAX_TAGS_TO_KEEP} (got ${shown(v)})`);
    }
    return { value: n, valueText: null };
  }
  const seconds = typeof v === 'string' ? durationSeconds(v.trim()) : undefined;
  if (seconds === undefined || seconds <= 0 || seconds > MAX_AGE_S) {
    throw invalid(`${INVALID_VALUE} creation_date: give an age with a unit, such as "7d", "2w", "12h" or "1y" (s, m = minutes, h, d, w, y = 365 days), more than 0 and at most 100y (got ${shown(v)})`);
  }
  return { value: seconds, valueText: typeof v === 'string' ? v.trim() : null };
}

/** Whole seconds of "7d", "1h30m", "2w", "1y"; undefined for anything else (bare numbers included: the unit is required). */
export function durationSeconds(text: string): number | undefined {
  const year = /^(\d{1,3})y$/.exec(text);
  if (year) return Number(year[1]) * YEAR_S;
  if (/^\d+$/.test(text)) return undefined;
  const ms = parseDuration(text);
  return ms === undefined || ms % 1000 !== 0 ? undefined : ms / 1000;
}

/** The value as the API shows it: the count, or the duration as it was given. */
export function policyValue(p: Pick<PolicyFields, 'method' | 'value' | 'valueText'>): number | string {
  return p.method === 'number_of_tags' ? p.value : (p.valueText ?? `${p.value}s`);
}

function shown(v: unknown): string {
  return v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v)).slice(0, 60);
}

function invalid(message: string): AccountError {
  return new AccountError('invalid_request', message);
}
