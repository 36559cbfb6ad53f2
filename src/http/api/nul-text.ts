/**
 * NUL characters in request bodies. No field of the management API may hold one (no name, description,
 * pattern or address has a use for it), and PostgreSQL cannot store one, so a body with a NUL in any
 * string is refused at the edge, on every database alike.
 */

/** The path (`description`, `scopes.1`) of the first string in `value` that holds a NUL, if any. */
export function nulTextField(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path || 'body' : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const where = path ? `${path}.${key}` : key;
    if (key.includes('\u0000')) return where;
    const found = nulTextField(item, where);
    if (found) return found;
  }
  return undefined;
}
