/**
 * Repository names and tags, as the OCI distribution spec defines them.
 *
 *   name      ::= component ("/" component)*
 *   component ::= [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
 *   tag       ::= [a-zA-Z0-9_] [a-zA-Z0-9._-]{0,127}
 *   reference ::= tag | digest
 *
 * A repository name may be at most 255 characters. Wharf files every repository under a namespace, the
 * first component; a one-component name such as `alpine` lives in the default namespace (`library`),
 * as on Docker Hub, so `alpine` and `library/alpine` are the same repository.
 */
import { parseDigest, type Digest } from './digest.js';

declare const nameBrand: unique symbol;
declare const tagBrand: unique symbol;

/** A validated, canonical repository name with at least two components: `namespace/path`. */
export type RepositoryName = string & { readonly [nameBrand]: true };
export type Tag = string & { readonly [tagBrand]: true };

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
export const MAX_NAME_LENGTH = 255;
export const DEFAULT_NAMESPACE = 'library';

export type NameParse = { ok: true; name: RepositoryName } | { ok: false; reason: string };

/** Parses a repository name; one-component names are placed in the default namespace. */
export function parseRepositoryName(value: string, defaultNamespace = DEFAULT_NAMESPACE): NameParse {
  if (value.length === 0) return { ok: false, reason: 'repository name is empty' };
  if (value.length > MAX_NAME_LENGTH) return { ok: false, reason: `repository name is longer than ${MAX_NAME_LENGTH} characters` };
  if (!NAME_RE.test(value)) {
    return {
      ok: false,
      reason: `invalid repository name "${value.slice(0, 100)}": components must be lowercase letters and digits, separated by ".", "_", "__" or "-", joined by "/"`,
    };
  }
  const canonical = value.includes('/') ? value : `${defaultNamespace}/${value}`;
  if (canonical.length > MAX_NAME_LENGTH) return { ok: false, reason: `repository name is longer than ${MAX_NAME_LENGTH} characters` };
  return { ok: true, name: canonical as RepositoryName };
}

/** The namespace (first component) and the rest of a repository name. */
export function splitRepositoryName(name: RepositoryName): { namespace: string; repository: string } {
  const i = name.indexOf('/');
  return { namespace: name.slice(0, i), repository: name.slice(i + 1) };
}

export function isTag(value: string): value is Tag {
  return TAG_RE.test(value);
}

export type Reference = { kind: 'tag'; tag: Tag } | { kind: 'digest'; digest: Digest };
export type ReferenceParse = { ok: true; reference: Reference } | { ok: false; reason: string };

/** A manifest reference is a digest when it contains ":", a tag otherwise. */
export function parseReference(value: string): ReferenceParse {
  if (value.includes(':')) {
    const d = parseDigest(value);
    return d.ok ? { ok: true, reference: { kind: 'digest', digest: d.digest } } : d;
  }
  if (isTag(value)) return { ok: true, reference: { kind: 'tag', tag: value } };
  return { ok: false, reason: `invalid tag "${value.slice(0, 140)}": up to 128 of [A-Za-z0-9_.-], not starting with "." or "-"` };
}
