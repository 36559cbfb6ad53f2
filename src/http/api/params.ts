/** zod building blocks for `/api/v1` query strings and bodies, and Quay's date rendering. */
import { z } from 'zod';
import { isTag, parseRepositoryName, type Tag } from '../../oci/reference.js';
import { isDigest, type Digest } from '../../oci/digest.js';
import { MAX_TIME_MS, renderableDate } from '../../config/units.js';

/** `true`/`false` (also `1`/`0`) in a query string. */
export const queryBool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'True', 'False'])
    .optional()
    .transform((v) => (v === undefined ? fallback : v === 'true' || v === 'True' || v === '1'));

/** A decimal integer in `[min, max]` in a query string. */
export const queryInt = (min: number, max: number, fallback: number) =>
  z
    .string()
    .regex(/^[0-9]{1,9}$/, 'must be a decimal integer')
    .optional()
    .transform((v) => (v === undefined ? fallback : Number(v)))
    .pipe(z.number().int().min(min).max(max));

/**
 * A repository's full name in a path, `namespace/name` (two or more components; repository-router.ts
 * finds it in the path, with its `/` raw or as `%2F`).
 */
export const repositoryPathName = z
  .string()
  .describe('The full name of the repository, namespace first (`acme/app`, `hub/library/alpine`); its "/" raw or encoded as %2F')
  .transform((v, ctx) => {
    const parsed = v.includes('/') ? parseRepositoryName(v) : { ok: false as const, reason: `a repository name has a namespace and a name: "${v.slice(0, 100)}"` };
    if (parsed.ok) return parsed.name;
    ctx.addIssue({ code: 'custom', message: parsed.reason });
    return z.NEVER;
  });

export const tagName = z.string().refine((v) => isTag(v), 'must be a tag: 1 to 128 of [A-Za-z0-9_.-], not starting with "." or "-"').transform((v) => v as Tag);
export const digest = z.string().refine((v) => isDigest(v), 'must be a digest such as sha256:<64 hex digits>').transform((v) => v as Digest);

/**
 * A time given as seconds since the epoch (Quay's `expiration`): up to the end of year 9999, as every
 * time Wharf stores (a larger number is no date a client can show, and past year 275760 none at all).
 */
export const epochSeconds = z
  .number()
  .min(0, 'must be seconds since the epoch, not negative')
  .max(Math.floor(MAX_TIME_MS / 1000), `must be seconds since the epoch up to ${Math.floor(MAX_TIME_MS / 1000)} (9999-12-31T23:59:59Z)`);

/** Seconds since the epoch, as Quay's `start_ts`/`end_ts`. */
export const seconds = (ms: number): number => Math.floor(ms / 1000);

/** An RFC 7231 date (`Tue, 03 Mar 2026 10:00:00 GMT`), as Quay's `last_modified`, `expiration` and `datetime`. */
export const httpDate = (ms: number): string => renderableDate(ms).toUTCString();

/** An ISO 8601 time (`2026-03-03T10:00:00.000Z`); null stays null. */
export const isoTime = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : renderableDate(ms).toISOString());

/** An opaque paging cursor holding one string. */
export const encodeCursor = (value: string): string => Buffer.from(JSON.stringify({ v: value })).toString('base64url');

/** The string in a cursor of encodeCursor, or undefined if it is not one. */
export function decodeCursor(cursor: string): string | undefined {
  try {
    const v = (JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { v?: unknown }).v;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}
