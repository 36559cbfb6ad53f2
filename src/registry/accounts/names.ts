/**
 * Account names, validated once at the service edge.
 *
 *   namespace (user or organization) ::= component, 2..255 characters
 *   component ::= [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*      (the repository name component grammar)
 *   robot     ::= namespace "+" short,  short ::= [a-z][a-z0-9_]{1,254}
 *   team      ::= [a-z][a-z0-9]+, at most 255 characters
 *
 * Users and organizations share one space of names (a namespace row each), so a name is either a user
 * or an organization, never both. A namespace name is always a valid first repository component.
 */
import { AccountError } from './account-error.js';

const NAMESPACE_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const ROBOT_SHORT_RE = /^[a-z][a-z0-9_]{1,254}$/;
const TEAM_RE = /^[a-z][a-z0-9]+$/;
const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;

export const MIN_NAMESPACE_LENGTH = 2;
export const MAX_NAMESPACE_LENGTH = 255;
export const MAX_TEAM_LENGTH = 255;
export const MAX_EMAIL_LENGTH = 254;

const shown = (value: string) => JSON.stringify(value.slice(0, 100));

/** The name if it is a valid user or organization name; AccountError(invalid_request) otherwise. */
export function validateNamespaceName(name: string): string {
  if (typeof name !== 'string' || name.length < MIN_NAMESPACE_LENGTH || name.length > MAX_NAMESPACE_LENGTH) {
    throw new AccountError('invalid_request', `a user or organization name must be ${MIN_NAMESPACE_LENGTH} to ${MAX_NAMESPACE_LENGTH} characters long`);
  }
  if (!NAMESPACE_RE.test(name)) {
    throw new AccountError(
      'invalid_request',
      `invalid user or organization name ${shown(name)}: use lowercase letters and digits, separated by ".", "_", "__" or "-"`,
    );
  }
  return name;
}

export function isNamespaceName(name: string): boolean {
  return typeof name === 'string' && name.length >= MIN_NAMESPACE_LENGTH && name.length <= MAX_NAMESPACE_LENGTH && NAMESPACE_RE.test(name);
}

/**
 * Whether `name` could name an existing namespace, and so is worth looking up. Looser than
 * `validateNamespaceName`: namespaces created by pushes before accounts existed may be one character.
 */
export function isLookupName(name: unknown): name is string {
  return typeof name === 'string' && name.length >= 1 && name.length <= MAX_NAMESPACE_LENGTH && NAMESPACE_RE.test(name);
}

/** The short name if valid (the part after `+`). */
export function validateRobotShortName(short: string): string {
  if (typeof short !== 'string' || !ROBOT_SHORT_RE.test(short)) {
    throw new AccountError(
      'invalid_request',
      `invalid robot name ${shown(String(short))}: 2 to 255 lowercase letters, digits and "_", starting with a letter`,
    );
  }
  return short;
}

export function validateTeamName(name: string): string {
  if (typeof name !== 'string' || name.length > MAX_TEAM_LENGTH || !TEAM_RE.test(name)) {
    throw new AccountError('invalid_request', `invalid team name ${shown(String(name))}: lowercase letters and digits, starting with a letter, at least 2 characters`);
  }
  return name;
}

/** An email address, loosely checked (one "@", no spaces); undefined and null pass through as null. */
export function validateEmail(email: string | null | undefined): string | null {
  if (email === undefined || email === null) return null;
  if (typeof email !== 'string' || email.length > MAX_EMAIL_LENGTH || !EMAIL_RE.test(email)) {
    throw new AccountError('invalid_request', `invalid email address ${shown(String(email))}`);
  }
  return email;
}

/** Splits `namespace+short`; undefined when the text is not a well-formed robot name. */
export function parseRobotName(full: string): { namespace: string; short: string } | undefined {
  const i = full.indexOf('+');
  if (i < 0) return undefined;
  const namespace = full.slice(0, i);
  const short = full.slice(i + 1);
  if (!isLookupName(namespace) || !ROBOT_SHORT_RE.test(short)) return undefined;
  return { namespace, short };
}

/** `namespace+short`. */
export function robotFullName(namespace: string, short: string): string {
  return `${namespace}+${short}`;
}
