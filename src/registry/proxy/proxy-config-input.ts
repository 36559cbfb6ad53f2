/**
 * What the API and the CLI may send to configure a proxy-cache organization, and the messages its
 * refusals carry (Quay's, so that Quay clients recognise them).
 */
import { z } from 'zod';
import { MAX_EXPIRATION_S, MAX_REVALIDATE_INTERVAL_S } from './proxy-config.js';

export interface ProxyConfigInput {
  /** `host[:port][/namespace]`, optionally with `http://` (then `insecure`) or `https://`. */
  upstreamRegistry: string;
  insecure?: boolean;
  expirationS?: number;
  anonymousPull?: boolean;
  revalidateIntervalS?: number;
  prefetchLayers?: boolean;
  answersFor?: string[];
  /** Upstream credentials: both or neither. */
  username?: string;
  password?: string;
}

/** What `update` changes: absent = unchanged; `username`/`password` both null = drop the credentials. */
export type ProxyConfigChanges = Partial<Omit<ProxyConfigInput, 'username' | 'password'>> & { username?: string | null; password?: string | null };

export type ValidationResult = 'Valid' | 'Anonymous';

export const ALREADY_EXISTS = 'Proxy Cache Configuration already exists';
export const FAILED_LOGIN = 'Failed login to remote registry. Please verify entered details and try again.';
export const NOT_ALLOWED = 'The provided registry URL is not allowed';
export const FAILED_VALIDATION = 'Failed to validate Proxy cache configuration';

export const MAX_HOSTS = 32;
const seconds = (name: string, max: number, what: string) => {
  const error = `${name} must be a whole number of seconds from 0${what} to ${max}`;
  return z.number({ error }).int({ error }).min(0, { error }).max(max, { error });
};
const flag = (name: string) => z.boolean({ error: `${name} must be true or false` });
const username = z
  .string({ error: 'upstream_registry_username must be text' })
  .min(1, { error: 'upstream_registry_username must not be empty' })
  .max(1024, { error: 'upstream_registry_username is at most 1024 characters' })
  .refine((u) => !/[:\u0000-\u001f\u007f]/.test(u), { error: 'upstream_registry_username must not contain ":" or control characters' });
const password = z
  .string({ error: 'upstream_registry_password must be text' })
  .min(1, { error: 'upstream_registry_password must not be empty' })
  .max(4096, { error: 'upstream_registry_password is at most 4096 characters' });
const FIELDS = {
  upstreamRegistry: z.string({ error: 'upstream_registry is required' }).trim().min(1, { error: 'upstream_registry is required' }).max(1024, { error: 'upstream_registry is too long' }),
  insecure: flag('insecure'),
  expirationS: seconds('expiration_s', MAX_EXPIRATION_S, ' (never expires)'),
  anonymousPull: flag('anonymous_pull'),
  revalidateIntervalS: seconds('revalidate_interval_s', MAX_REVALIDATE_INTERVAL_S, ' (ask upstream on every pull)'),
  prefetchLayers: flag('prefetch_layers'),
  answersFor: z.array(z.string({ error: 'answers_for holds host names' }), { error: 'answers_for must be a list of host[:port]' }).max(MAX_HOSTS, { error: `answers_for holds at most ${MAX_HOSTS} hosts` }),
};
export const InputSchema = z.object({ ...FIELDS, username: username.optional(), password: password.optional() }).partial({ insecure: true, expirationS: true, anonymousPull: true, revalidateIntervalS: true, prefetchLayers: true, answersFor: true });
export const ChangesSchema = z.object({ ...FIELDS, username: username.nullable(), password: password.nullable() }).partial();

