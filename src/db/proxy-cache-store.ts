/**
 * Proxy-cache configurations: at most one per organization (`proxy_cache_configs`, keyed by namespace).
 * The store keeps what it is given; credentials arrive already encrypted and leave encrypted.
 */
import type { Kysely } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import { PreparedQuery } from './prepared-query.js';
import type { Database } from './tables.js';

/** What a configuration says, as stored. */
export interface ProxyCacheFields {
  upstreamRegistry: string;
  insecure: boolean;
  expirationS: number;
  anonymousPull: boolean;
  revalidateIntervalS: number;
  prefetchLayers: boolean;
  answersFor: string[];
  /** Encrypted (SecretBox) or null; both or neither. */
  usernameEnc: string | null;
  passwordEnc: string | null;
}

export interface ProxyCacheRecord extends ProxyCacheFields {
  namespaceId: number;
  /** The organization's name. */
  organization: string;
  createdAt: number;
  updatedAt: number;
}

type Row = Parameters<typeof toRecord>[0];

export class ProxyCacheStore {
  // The data plane looks configurations up per request (behind its own cache): compiled once.
  private readonly byNamespaceId: PreparedQuery<Row, { id: number }>;
  private readonly byOrganization: PreparedQuery<Row, { name: string }>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {
    this.byNamespaceId = new PreparedQuery<Row, { id: number }>((p) => this.select().where('p.namespace_id', '=', p.id), ['id']);
    this.byOrganization = new PreparedQuery<Row, { name: string }>((p) => this.select().where('n.name', '=', p.name), ['name']);
  }

  private select() {
    return this.db
      .selectFrom('proxy_cache_configs as p')
      .innerJoin('namespaces as n', 'n.id', 'p.namespace_id')
      .select([
        'p.namespace_id',
        'n.name as organization',
        'p.upstream_registry',
        'p.insecure',
        'p.expiration_s',
        'p.anonymous_pull',
        'p.revalidate_interval_s',
        'p.prefetch_layers',
        'p.answers_for',
        'p.username_enc',
        'p.password_enc',
        'p.created_at',
        'p.updated_at',
      ]);
  }

  async findByNamespaceId(namespaceId: number): Promise<ProxyCacheRecord | undefined> {
    const row = await this.byNamespaceId.first(this.db, { id: namespaceId });
    return row && toRecord(row);
  }

  async findByOrganization(name: string): Promise<ProxyCacheRecord | undefined> {
    const row = await this.byOrganization.first(this.db, { name });
    return row && toRecord(row);
  }

  /** Every configuration, by organization name. */
  async list(): Promise<ProxyCacheRecord[]> {
    const rows = await this.select().orderBy('n.name').execute();
    return rows.map(toRecord);
  }

  /** Creates the namespace's configuration; undefined when it already has one. */
  async create(namespaceId: number, fields: ProxyCacheFields, now: number = Date.now()): Promise<ProxyCacheRecord | undefined> {
    try {
      await this.db
        .insertInto('proxy_cache_configs')
        .values({ namespace_id: namespaceId, ...toColumns(fields), created_at: now, updated_at: now })
        .execute();
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return undefined;
      throw err;
    }
    return this.findByNamespaceId(namespaceId);
  }

  /** Changes the fields given; undefined when the namespace has no configuration. */
  async update(namespaceId: number, changes: Partial<ProxyCacheFields>, now: number = Date.now()): Promise<ProxyCacheRecord | undefined> {
    const res = await this.db
      .updateTable('proxy_cache_configs')
      .set({ ...changedColumns(changes), updated_at: now })
      .where('namespace_id', '=', namespaceId)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return undefined;
    return this.findByNamespaceId(namespaceId);
  }

  /** Deletes only the configuration row (the organization's repositories stay); false when there was none. */
  async delete(namespaceId: number): Promise<boolean> {
    const res = await this.db.deleteFrom('proxy_cache_configs').where('namespace_id', '=', namespaceId).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
}

const flag = (b: boolean) => (b ? 1 : 0);

function toColumns(f: ProxyCacheFields) {
  return {
    upstream_registry: f.upstreamRegistry,
    insecure: flag(f.insecure),
    expiration_s: f.expirationS,
    anonymous_pull: flag(f.anonymousPull),
    revalidate_interval_s: f.revalidateIntervalS,
    prefetch_layers: flag(f.prefetchLayers),
    answers_for: JSON.stringify(f.answersFor),
    username_enc: f.usernameEnc,
    password_enc: f.passwordEnc,
  };
}

/** The columns of the fields that are present (null is a value; undefined means unchanged). */
function changedColumns(f: Partial<ProxyCacheFields>): Partial<ReturnType<typeof toColumns>> {
  const out: Partial<ReturnType<typeof toColumns>> = {};
  if (f.upstreamRegistry !== undefined) out.upstream_registry = f.upstreamRegistry;
  if (f.insecure !== undefined) out.insecure = flag(f.insecure);
  if (f.expirationS !== undefined) out.expiration_s = f.expirationS;
  if (f.anonymousPull !== undefined) out.anonymous_pull = flag(f.anonymousPull);
  if (f.revalidateIntervalS !== undefined) out.revalidate_interval_s = f.revalidateIntervalS;
  if (f.prefetchLayers !== undefined) out.prefetch_layers = flag(f.prefetchLayers);
  if (f.answersFor !== undefined) out.answers_for = JSON.stringify(f.answersFor);
  if (f.usernameEnc !== undefined) out.username_enc = f.usernameEnc;
  if (f.passwordEnc !== undefined) out.password_enc = f.passwordEnc;
  return out;
}

function toRecord(row: {
  namespace_id: number;
  organization: string;
  upstream_registry: string;
  insecure: number;
  expiration_s: number;
  anonymous_pull: number;
  revalidate_interval_s: number;
  prefetch_layers: number;
  answers_for: string;
  username_enc: string | null;
  password_enc: string | null;
  created_at: number;
  updated_at: number;
}): ProxyCacheRecord {
  return {
    namespaceId: row.namespace_id,
    organization: row.organization,
    upstreamRegistry: row.upstream_registry,
    insecure: row.insecure === 1,
    expirationS: Number(row.expiration_s),
    anonymousPull: row.anonymous_pull === 1,
    revalidateIntervalS: row.revalidate_interval_s,
    prefetchLayers: row.prefetch_layers === 1,
    answersFor: parseHosts(row.answers_for),
    usernameEnc: row.username_enc,
    passwordEnc: row.password_enc,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function parseHosts(text: string): string[] {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.filter((h): h is string => typeof h === 'string') : [];
  } catch {
    return [];
  }
}
