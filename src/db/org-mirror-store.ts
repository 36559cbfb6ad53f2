/**
 * Organization mirror configurations (`organization_mirrors`, one row per organization) and the
 * repositories their discovery runs found (`organization_mirror_repositories`): the record shape both
 * the configuration side (registry/mirror/org-mirror-config-service.ts) and the discovery run read.
 * Credentials arrive already encrypted and leave encrypted; JSON columns are parsed here, once.
 * The schedule of discovery runs (claim, renew, release) is org-mirror-schedule-store.ts.
 */
import { randomUUID } from 'node:crypto';
import { sql, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { MirrorProxySettings, MirrorSyncStatus } from './mirror-store.js';
import type { Database, OrganizationMirrorsTable } from './tables.js';

export type OrgMirrorRegistryType = 'quay' | 'harbor';

/** What an organization mirror configuration says, as stored. */
export interface OrgMirrorFields {
  enabled: boolean;
  registryType: OrgMirrorRegistryType;
  registryUrl: string;
  externalNamespace: string;
  /** Encrypted (SecretBox) or null. */
  usernameEnc: string | null;
  passwordEnc: string | null;
  verifyTls: boolean;
  proxy: MirrorProxySettings;
  robotId: number | null;
  visibility: 'public' | 'private';
  repositoryFilters: string[];
  syncIntervalS: number;
  timeoutS: number;
}

export interface OrgMirrorRecord extends OrgMirrorFields {
  namespaceId: number;
  organization: string;
  /** The robot's full name (`org+name`), when it exists. */
  robotName: string | null;
  sync: { status: MirrorSyncStatus; startAt: number | null; expiresAt: number | null; retriesRemaining: number; txn: string; holder: string | null };
  lastFinishedAt: number | null;
  lastMessage: string | null;
  createdAt: number;
  updatedAt: number;
}

/** A repository a discovery run found, with the state of its repository mirror. */
export interface OrgMirrorRepositoryRecord {
  name: string;
  repositoryId: number | null;
  discoveredAt: number;
  vanishedAt: number | null;
  message: string | null;
  /** The repository mirror's status (null when the repository or its mirror is gone). */
  status: MirrorSyncStatus | null;
  lastFinishedAt: number | null;
  lastMessage: string | null;
}

type Row = Selectable<OrganizationMirrorsTable> & { organization: string; robot_ns: string | null; robot_short: string | null };

export function selectOrgMirrors(db: Kysely<Database>) {
  return db
    .selectFrom('organization_mirrors as om')
    .innerJoin('namespaces as n', 'n.id', 'om.namespace_id')
    .leftJoin('robots as rb', 'rb.id', 'om.robot_id')
    .leftJoin('namespaces as rn', 'rn.id', 'rb.namespace_id')
    .selectAll('om')
    .select(['n.name as organization', 'rn.name as robot_ns', 'rb.name as robot_short']);
}

export function toOrgMirrorRecord(row: Row): OrgMirrorRecord {
  const n = (v: number | string | null): number | null => (v === null ? null : Number(v));
  return {
    namespaceId: Number(row.namespace_id),
    organization: row.organization,
    enabled: row.is_enabled === 1,
    registryType: row.registry_type as OrgMirrorRegistryType,
    registryUrl: row.registry_url,
    externalNamespace: row.external_namespace,
    usernameEnc: row.username_enc,
    passwordEnc: row.password_enc,
    verifyTls: row.verify_tls === 1,
    proxy: JSON.parse(row.proxy) as MirrorProxySettings,
    robotId: n(row.robot_id),
    robotName: row.robot_short === null ? null : `${row.robot_ns}+${row.robot_short}`,
    visibility: row.visibility as 'public' | 'private',
    repositoryFilters: JSON.parse(row.repository_filters) as string[],
    syncIntervalS: Number(row.sync_interval_s),
    timeoutS: Number(row.timeout_s),
    sync: {
      status: row.sync_status as MirrorSyncStatus,
      startAt: n(row.sync_start_at),
      expiresAt: n(row.sync_expires_at),
      retriesRemaining: row.sync_retries_remaining,
      txn: row.sync_txn,
      holder: row.sync_holder,
    },
    lastFinishedAt: n(row.last_finished_at),
    lastMessage: row.last_message,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export type OrgMirrorCreateResult = OrgMirrorRecord | 'exists' | 'not_empty';
export type OrgMirrorChanges = Partial<OrgMirrorFields> & { startAt?: number };

export class OrgMirrorStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {}

  async find(namespaceId: number): Promise<OrgMirrorRecord | undefined> {
    const row = await selectOrgMirrors(this.db).where('om.namespace_id', '=', namespaceId).executeTakeFirst();
    return row && toOrgMirrorRecord(row);
  }

  /** The full name (`org+name`) of a robot, or undefined when it no longer exists. */
  async robotName(robotId: number): Promise<string | undefined> {
    const row = await this.db.selectFrom('robots as rb').innerJoin('namespaces as n', 'n.id', 'rb.namespace_id').select(['n.name as ns', 'rb.name as short']).where('rb.id', '=', robotId).executeTakeFirst();
    return row && `${row.ns}+${row.short}`;
  }

  /** Whether the organization (namespace id) has an organization mirror. */
  async exists(namespaceId: number): Promise<boolean> {
    return (await this.db.selectFrom('organization_mirrors').select('namespace_id').where('namespace_id', '=', namespaceId).executeTakeFirst()) !== undefined;
  }

  /**
   * Creates the configuration (NEVER_RUN, 3 retries, due at `startAt`) of an organization that holds no
   * repository, in one transaction; 'not_empty' when it holds one, 'exists' when it has one already.
   */
  async create(namespaceId: number, fields: OrgMirrorFields, opts: { startAt: number; now: number }): Promise<OrgMirrorCreateResult> {
    try {
      const result = await this.db.transaction().execute(async (tx) => {
        let lock = tx.selectFrom('namespaces').select('id').where('id', '=', namespaceId);
        if (this.dialect.supportsRowLocks) lock = lock.forUpdate();
        await lock.executeTakeFirst();
        const repo = await tx.selectFrom('repositories').select('id').where('namespace_id', '=', namespaceId).limit(1).executeTakeFirst();
        if (repo) return 'not_empty' as const;
        if (await tx.selectFrom('organization_mirrors').select('namespace_id').where('namespace_id', '=', namespaceId).executeTakeFirst()) return 'exists' as const;
        await tx
          .insertInto('organization_mirrors')
          .values({ ...(columns(fields) as Insertable<OrganizationMirrorsTable>), namespace_id: namespaceId, sync_start_at: opts.startAt, sync_txn: randomUUID(), created_at: opts.now, updated_at: opts.now })
          .execute();
        return 'created' as const;
      });
      if (result !== 'created') return result;
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return 'exists';
      throw err;
    }
    return (await this.find(namespaceId))!;
  }

  /**
   * Changes the fields given; undefined when there is no configuration. Enabling or disabling it does
   * the same to the repository mirrors of the repositories it discovered that are still at the source
   * (Quay syncs an organization's repositories only while its mirror is enabled), in one transaction.
   */
  async update(namespaceId: number, changes: OrgMirrorChanges, now: number): Promise<OrgMirrorRecord | undefined> {
    const { startAt, ...fields } = changes;
    const found = await this.db.transaction().execute(async (tx) => {
      const res = await tx
        .updateTable('organization_mirrors')
        .set({ ...columns(fields), ...(startAt !== undefined ? { sync_start_at: startAt } : {}), updated_at: now })
        .where('namespace_id', '=', namespaceId)
        .executeTakeFirst();
      if (!Number(res.numUpdatedRows)) return false;
      if (fields.enabled !== undefined) {
        await tx
          .updateTable('repository_mirrors')
          .set({ is_enabled: fields.enabled ? 1 : 0, updated_at: now })
          .where('repository_id', 'in', (eb) =>
            eb.selectFrom('organization_mirror_repositories').select('repository_id').where('namespace_id', '=', namespaceId).where('repository_id', 'is not', null).where('vanished_at', 'is', null),
          )
          .execute();
      }
      return true;
    });
    return found ? this.find(namespaceId) : undefined;
  }

  /**
   * Deletes the configuration and what it discovered, in one transaction. The repositories it created
   * stay, as ordinary repositories with their tags: their repository mirrors are deleted and their
   * state is NORMAL again. False when there was no configuration.
   */
  async delete(namespaceId: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const ids = (await tx.selectFrom('organization_mirror_repositories').select('repository_id').where('namespace_id', '=', namespaceId).where('repository_id', 'is not', null).execute()).map((r) => Number(r.repository_id));
      if (ids.length) {
        await tx.deleteFrom('repository_mirrors').where('repository_id', 'in', ids).execute();
        await tx.updateTable('repositories').set({ state: 'NORMAL', mirror_robot_id: null }).where('id', 'in', ids).where('state', '=', 'MIRROR').execute();
      }
      await tx.deleteFrom('organization_mirror_repositories').where('namespace_id', '=', namespaceId).execute();
      const res = await tx.deleteFrom('organization_mirrors').where('namespace_id', '=', namespaceId).executeTakeFirst();
      return Number(res.numDeletedRows) === 1;
    });
  }

  /** Quay's sync-now: SYNC_NOW, due now, no lease, at least one retry, a new txn; undefined while SYNCING. */
  async syncNow(namespaceId: number, now: number): Promise<OrgMirrorRecord | undefined> {
    const res = await this.db
      .updateTable('organization_mirrors')
      .set((eb) => ({
        sync_status: 'SYNC_NOW',
        sync_start_at: now,
        sync_expires_at: null,
        sync_retries_remaining: eb.case().when('sync_retries_remaining', '<', 1).then(1).else(eb.ref('sync_retries_remaining')).end(),
        sync_txn: randomUUID(),
        updated_at: now,
      }))
      .where('namespace_id', '=', namespaceId)
      .where('sync_status', '<>', 'SYNCING')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) ? this.find(namespaceId) : undefined;
  }

  /**
   * Quay's sync-cancel: from any status but CANCEL, CANCEL with no retries and no lease and a new txn
   * (a discovery run in flight loses its claim and stops); the repository mirrors of the organization
   * that are syncing or asked to are cancelled too, as their own sync-cancel does. Undefined when CANCEL.
   */
  async cancel(namespaceId: number, now: number): Promise<OrgMirrorRecord | undefined> {
    const done = await this.db.transaction().execute(async (tx) => {
      const res = await tx
        .updateTable('organization_mirrors')
        .set({ sync_status: 'CANCEL', sync_retries_remaining: 0, sync_expires_at: null, sync_holder: null, sync_txn: randomUUID(), updated_at: now })
        .where('namespace_id', '=', namespaceId)
        .where('sync_status', '<>', 'CANCEL')
        .executeTakeFirst();
      if (!Number(res.numUpdatedRows)) return false;
      await tx
        .updateTable('repository_mirrors')
        .set((eb) => ({
          sync_status: 'CANCEL',
          sync_retries_remaining: 0,
          sync_txn: eb.case().when('sync_status', '=', 'SYNC_NOW').then(randomUUID()).else(eb.ref('sync_txn')).end(),
          updated_at: now,
        }))
        .where('repository_id', 'in', (eb) => eb.selectFrom('organization_mirror_repositories').select('repository_id').where('namespace_id', '=', namespaceId).where('repository_id', 'is not', null))
        .where('sync_status', 'in', ['SYNCING', 'SYNC_NOW'])
        .execute();
      return true;
    });
    return done ? this.find(namespaceId) : undefined;
  }

  /** The repositories discovered, by name, a page (1-based) at a time, and how many there are. */
  async repositories(namespaceId: number, page: number, limit: number): Promise<{ repositories: OrgMirrorRepositoryRecord[]; total: number }> {
    const count = await this.db.selectFrom('organization_mirror_repositories').select((eb) => eb.fn.countAll().as('n')).where('namespace_id', '=', namespaceId).executeTakeFirst();
    const rows = await this.db
      .selectFrom('organization_mirror_repositories as d')
      .leftJoin('repository_mirrors as m', 'm.repository_id', 'd.repository_id')
      .select(['d.name', 'd.repository_id', 'd.discovered_at', 'd.vanished_at', 'd.message', 'm.sync_status', 'm.last_finished_at', 'm.last_message'])
      .where('d.namespace_id', '=', namespaceId)
      .orderBy('d.name')
      .limit(limit)
      .offset((page - 1) * limit)
      .execute();
    const n = (v: number | string | null): number | null => (v === null ? null : Number(v));
    return {
      total: Number(count?.n ?? 0),
      repositories: rows.map((r) => ({
        name: r.name,
        repositoryId: n(r.repository_id),
        discoveredAt: Number(r.discovered_at),
        vanishedAt: n(r.vanished_at),
        message: r.message,
        status: (r.sync_status ?? null) as MirrorSyncStatus | null,
        lastFinishedAt: n(r.last_finished_at),
        lastMessage: r.last_message,
      })),
    };
  }

  /**
   * How many repositories are in each status: that of their repository mirror; SKIP for those the last
   * discovery did not find at the source any more (their mirror is disabled).
   */
  async statusCounts(namespaceId: number): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('organization_mirror_repositories as d')
      .leftJoin('repository_mirrors as m', 'm.repository_id', 'd.repository_id')
      .select([sql<string>`case when d.vanished_at is not null then 'SKIP' else coalesce(m.sync_status, 'NEVER_RUN') end`.as('status'), (eb) => eb.fn.countAll().as('n')])
      .where('d.namespace_id', '=', namespaceId)
      .groupBy(sql`case when d.vanished_at is not null then 'SKIP' else coalesce(m.sync_status, 'NEVER_RUN') end`)
      .execute();
    const counts: Record<string, number> = { CANCEL: 0, FAIL: 0, NEVER_RUN: 0, SUCCESS: 0, SYNCING: 0, SYNC_NOW: 0, SKIP: 0 };
    for (const r of rows) counts[r.status] = (counts[r.status] ?? 0) + Number(r.n);
    return counts;
  }
}

function columns(f: Partial<OrgMirrorFields>): Partial<Insertable<OrganizationMirrorsTable>> {
  const out: Partial<Insertable<OrganizationMirrorsTable>> = {};
  const flag = (v: boolean) => (v ? 1 : 0);
  if (f.enabled !== undefined) out.is_enabled = flag(f.enabled);
  if (f.registryType !== undefined) out.registry_type = f.registryType;
  if (f.registryUrl !== undefined) out.registry_url = f.registryUrl;
  if (f.externalNamespace !== undefined) out.external_namespace = f.externalNamespace;
  if (f.usernameEnc !== undefined) out.username_enc = f.usernameEnc;
  if (f.passwordEnc !== undefined) out.password_enc = f.passwordEnc;
  if (f.verifyTls !== undefined) out.verify_tls = flag(f.verifyTls);
  if (f.proxy !== undefined) out.proxy = JSON.stringify(f.proxy);
  if (f.robotId !== undefined) out.robot_id = f.robotId;
  if (f.visibility !== undefined) out.visibility = f.visibility;
  if (f.repositoryFilters !== undefined) out.repository_filters = JSON.stringify(f.repositoryFilters);
  if (f.syncIntervalS !== undefined) out.sync_interval_s = f.syncIntervalS;
  if (f.timeoutS !== undefined) out.timeout_s = f.timeoutS;
  return out;
}
