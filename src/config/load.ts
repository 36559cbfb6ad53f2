/** Loads the configuration: YAML file, then `WHARF_*` environment overrides, validated by one schema. */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type LeafKind = 'string' | 'number' | 'boolean' | 'size-or-number';

/** Every leaf key of the schema with the environment variable that sets it. */
export function configLeaves(): Array<{ path: string[]; env: string; kind: LeafKind }> {
  const out: Array<{ path: string[]; env: string; kind: LeafKind }> = [];
  const visit = (schema: unknown, path: string[]) => {
    const def = (schema as { _zod: { def: Record<string, unknown> } })._zod.def;
    switch (def.type) {
      case 'object':
        for (const [k, v] of Object.entries(def.shape as Record<string, unknown>)) visit(v, [...path, k]);
        return;
      case 'default':
      case 'prefault':
      case 'optional':
      case 'nullable':
        return visit(def.innerType, path);
      case 'pipe':
        return visit(def.in, path);
      case 'union':
        out.push({ path, env: envName(path), kind: 'size-or-number' });
        return;
      case 'number':
        out.push({ path, env: envName(path), kind: 'number' });
        return;
      case 'boolean':
        out.push({ path, env: envName(path), kind: 'boolean' });
        return;
      default:
        out.push({ path, env: envName(path), kind: 'string' });
    }
  };
  visit(configSchema, []);
  return out;
}

function envName(path: string[]): string {
  return `WHARF_${path.join('_').toUpperCase()}`;
}

function envValue(raw: string, kind: LeafKind, name: string): unknown {
  switch (kind) {
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new ConfigError(`${name}: "${raw}" is not a number`);
      return n;
    }
    case 'boolean':
      if (/^(true|1|yes|on)$/i.test(raw)) return true;
      if (/^(false|0|no|off)$/i.test(raw)) return false;
      throw new ConfigError(`${name}: "${raw}" is not a boolean (true/false)`);
    case 'size-or-number':
      return /^\d+$/.test(raw) ? Number(raw) : raw;
    default:
      return raw;
  }
}

/** Reads, overlays and validates; paths in the result are absolute. Throws ConfigError with every problem listed. */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> } = {}): Readonly<Config> {
  const env = opts.env ?? process.env;
  let doc: Record<string, unknown> = {};
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${opts.file}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text) as unknown;
    } catch (err) {
      // The parser's message is its first line ("... at line 2, column 1:"); a code frame follows it.
      const first = ((err as Error).message ?? String(err)).split('\n')[0]!.replace(/:\s*$/, '');
      throw new ConfigError(`${opts.file} is not valid YAML: ${first}`);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`${opts.file}: the top level must be a mapping`);
      doc = parsed as Record<string, unknown>;
    }
  }
  // The name the issue and the bootstrap docs use; WHARF_AUTH_ADMIN_PASSWORD wins when both are set.
  if (env.WHARF_ADMIN_PASSWORD !== undefined && env.WHARF_AUTH_ADMIN_PASSWORD === undefined) {
    setPath(doc, ['auth', 'admin_password'], env.WHARF_ADMIN_PASSWORD);
  }
  for (const leaf of configLeaves()) {
    const raw = env[leaf.env];
    if (raw === undefined) continue;
    setPath(doc, leaf.path, envValue(raw, leaf.kind, leaf.env));
  }
  for (const [k, v] of Object.entries(opts.overrides ?? {})) setPath(doc, k.split('.'), v);

  const result = configSchema.safeParse(doc);
  if (!result.success) {
    const fromEnv = new Map(configLeaves().filter((l) => env[l.env] !== undefined).map((l) => [l.path.join('.'), l.env]));
    const problems = result.error.issues.map((i) => {
      const key = i.path.join('.') || '(root)';
      const via = fromEnv.get(key);
      return `${key}${via ? ` (set by ${via})` : ''}: ${i.message}`;
    });
    // One problem, one line; several, one line each under a heading.
    const where = `invalid configuration${opts.file ? ` in ${opts.file}` : ''}`;
    throw new ConfigError(problems.length === 1 ? `${where}: ${problems[0]}` : `${where}:\n${problems.map((p) => `- ${p}`).join('\n')}`);
  }
  const config = result.data;
  config.data_dir = absolute(config.data_dir);
  if (config.storage.path) config.storage.path = absolute(config.storage.path);
  for (const location of Object.values(config.storage.locations ?? {})) if (location.path) location.path = absolute(location.path);
  return deepFreeze(config);
}

function absolute(p: string): string {
  return isAbsolute(p) ? p : resolve(p);
}

function setPath(doc: Record<string, unknown>, path: string[], value: unknown): void {
  let node = doc;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
