/**
 * Mirror rows written straight into the database, for tests of the schedule and the worker (the
 * configuration API is tested on its own): the repository is created in state MIRROR and its
 * `repository_mirrors` row inserted with the given fields; credentials are sealed with a real SecretBox.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { DatabaseHandle } from '../../src/db/connect.js';
import { RepositoryStore } from '../../src/db/repository-store.js';
import type { RepositoryMirrorsTable } from '../../src/db/tables.js';
import { MIRROR_SECRET_FIELDS } from '../../src/registry/mirror/mirror-upstream.js';
import { SecretBox } from '../../src/registry/proxy/secret-box.js';

export interface MirrorRowInput {
  externalReference?: string;
  globs?: string[];
  architectures?: string[];
  intervalS?: number;
  startAt?: number | null;
  status?: string;
  enabled?: boolean;
  retries?: number;
  rollback?: boolean;
  verifyTls?: boolean;
  timeoutS?: number;
  credentials?: { username: string; password: string; box: SecretBox };
  expiresAt?: number | null;
}

/** A SecretBox with a random key (the proxy cache's box type, as a registry's `proxy_cache.secret_key` makes it). */
export function testSecretBox(key = randomBytes(32)): { box: SecretBox; key: string } {
  return { box: new SecretBox(key), key: key.toString('base64') };
}

/** Creates `namespace/repository` in state MIRROR with a mirror row; returns the repository id. */
export async function insertMirror(db: DatabaseHandle, name: string, m: MirrorRowInput = {}): Promise<number> {
  const slash = name.indexOf('/');
  const repo = await new RepositoryStore(db.db, db.dialect).ensure(name.slice(0, slash), name.slice(slash + 1));
  await db.db.updateTable('repositories').set({ state: 'MIRROR' }).where('id', '=', repo.id).execute();
  const now = Date.now();
  const row: RepositoryMirrorsTable = {
    repository_id: repo.id,
    is_enabled: m.enabled === false ? 0 : 1,
    external_reference: m.externalReference ?? 'registry.example.com/library/app',
    username_enc: m.credentials ? m.credentials.box.seal(m.credentials.username, MIRROR_SECRET_FIELDS.username) : null,
    password_enc: m.credentials ? m.credentials.box.seal(m.credentials.password, MIRROR_SECRET_FIELDS.password) : null,
    verify_tls: m.verifyTls === true ? 1 : 0,
    unsigned_images: 0,
    proxy: '{}',
    root_rule: JSON.stringify(m.globs ?? ['*']),
    architecture_filter: JSON.stringify(m.architectures ?? []),
    rollback_on_failure: m.rollback ? 1 : 0,
    sync_interval_s: m.intervalS ?? 3600,
    timeout_s: m.timeoutS ?? 300,
    sync_start_at: m.startAt === undefined ? now - 1000 : m.startAt,
    sync_expires_at: m.expiresAt ?? null,
    sync_retries_remaining: m.retries ?? 3,
    sync_status: m.status ?? 'NEVER_RUN',
    sync_txn: randomUUID(),
    sync_holder: null,
    sync_process: null,
    run_started_at: null,
    run_tags_total: null,
    run_tags_done: null,
    run_bytes: null,
    run_current_tag: null,
    last_started_at: null,
    last_finished_at: null,
    last_outcome: null,
    last_message: null,
    last_bytes: null,
    created_at: now,
    updated_at: now,
  };
  await db.db.insertInto('repository_mirrors').values(row).execute();
  return repo.id;
}

/** Sets columns of a mirror row (as the configuration API would: cancel, sync-now...). */
export async function updateMirror(db: DatabaseHandle, repositoryId: number, set: Partial<RepositoryMirrorsTable>): Promise<void> {
  await db.db.updateTable('repository_mirrors').set(set).where('repository_id', '=', repositoryId).execute();
}
