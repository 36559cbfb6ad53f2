/**
 * Repository mirror configurations (`repository_mirrors`, one row per mirrored repository): the
 * record shape both the configuration side (create, change, show, sync-now, cancel) and the schedule
 * side (mirror-schedule-store.ts: claim, renew, progress, release) read. Credentials arrive already
 * encrypted and leave encrypted; JSON columns are parsed here, once.
 */
import { randomUUID } from 'node:crypto';
import type { Insertable, Kysely, Selectable } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { Database, RepositoryMirrorsTable } from './tables.js';

export type MirrorSyncStatus = 'NEVER_RUN' | 'SYNC_NOW' | 'SYNCING' | 'SUCCESS' | 'FAIL' | 'CANCEL';
export const MIRROR_SYNC_STATUSES: readonly MirrorSyncStatus[] = ['NEVER_RUN', 'SYNC_NOW', 'SYNCING', 'SUCCESS', 'FAIL', 'CANCEL'];

/** How a finished run ended: PARTIAL = some tags failed and kept their previous target. */
export type MirrorRunOutcome = 'SUCCESS' | 'PARTIAL' | 'FAIL' | 'CANCEL';

export interface MirrorProxySettings {
  http_proxy?: string;
  https_proxy?: string;
  no_proxy?: string;
}

/** What a mirror configuration says, as stored. */
export interface MirrorFields {
  enabled: boolean;
  externalReference: string;
  /** Encrypted (SecretBox) or null; a password never without a username. */
  usernameEnc: string | null;
  passwordEnc: string | null;
  verifyTls: boolean;
  unsignedImages: boolean;
  proxy: MirrorProxySettings;
  tagGlobs: string[];
  architectures: string[];
  rollbackOnFailure: boolean;
  syncIntervalS: number;
  timeoutS: number;
}

/** The schedule and progress of a mirror. */
export interface MirrorSyncState {
  status: MirrorSyncStatus;
  /** The next due time (epoch ms); null = only on sync-now. */
  startAt: number | null;
  /** While SYNCING: when the claim expires unless renewed. */
  expiresAt: number | null;
  retriesRemaining: number;
  /** Rotated by every claim and release: the optimistic lock of the schedule. */
  txn: string;
  holder: string | null;
  run: { startedAt: number; tagsTotal: number | null; tagsDone: number; bytes: number; currentTag: string | null } | null;
  last: { startedAt: number | null; finishedAt: number; outcome: MirrorRunOutcome; message: string | null; bytes: number } | null;
}

export interface MirrorRecord extends MirrorFields {
  repositoryId: number;
  namespace: string;
  repository: string;
  /** repositories.mirror_robot_id, and the robot's full name (`ns+name`) when it exists. */
  robotId: number | null;
  robotName: string | null;
  sync: MirrorSyncState;
  createdAt: number;
  updatedAt: number;
}

/** A `repository_mirrors` row joined as selectMirrors selects it. */
export type MirrorRow = Selectable<RepositoryMirrorsTable> & { namespace: string; repository: string; mirror_robot_id: number | null; robot_ns: string; robot_short: string | null };

/** The row of `repository_mirrors` joined with its repository, namespace and robot names. */
export function selectMirrors(db: Kysely<Database>) {
  return db
    .selectFrom('repository_mirrors as m')
    .innerJoin('repositories as r', 'r.id', 'm.repository_id')
    .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
    .leftJoin('robots as rb', 'rb.id', 'r.mirror_robot_id')
    .leftJoin('namespaces as rn', 'rn.id', 'rb.namespace_id')
    .selectAll('m')
    .select(['n.name as namespace', 'r.name as repository', 'r.mirror_robot_id'])
    .select((eb) => eb.fn.coalesce(eb.ref('rn.name'), eb.val('')).as('robot_ns'))
    .select('rb.name as robot_short');
}

export function toMirrorRecord(row: MirrorRow): MirrorRecord {
  const n = (v: number | string | null): number | null => (v === null ? null : Number(v));
  const status = row.sync_status as MirrorSyncStatus;
  return {
    repositoryId: Number(row.repository_id),
    namespace: row.namespace,
    repository: row.repository,
    robotId: n(row.mirror_robot_id),
    robotName: row.robot_short === null ? null : `${row.robot_ns}+${row.robot_short}`,
    enabled: row.is_enabled === 1,
    externalReference: row.external_reference,
    usernameEnc: row.username_enc,
    passwordEnc: row.password_enc,
    verifyTls: row.verify_tls === 1,
    unsignedImages: row.unsigned_images === 1,
    proxy: JSON.parse(row.proxy) as MirrorProxySettings,
    tagGlobs: JSON.parse(row.root_rule) as string[],
    architectures: JSON.parse(row.architecture_filter) as string[],
    rollbackOnFailure: row.rollback_on_failure === 1,
    syncIntervalS: Number(row.sync_interval_s),
    timeoutS: Number(row.timeout_s),
    sync: {
      status,
      startAt: n(row.sync_start_at),
      expiresAt: n(row.sync_expires_at),
      retriesRemaining: row.sync_retries_remaining,
      txn: row.sync_txn,
      holder: row.sync_holder,
      run:
        row.run_started_at === null
          ? null
          : { startedAt: Number(row.run_started_at), tagsTotal: n(row.run_tags_total), tagsDone: row.run_tags_done ?? 0, bytes: Number(row.run_bytes ?? 0), currentTag: row.run_current_tag },
      last:
        row.last_finished_at === null
          ? null
          : {
              startedAt: n(row.last_started_at),
              finishedAt: Number(row.last_finished_at),
              outcome: row.last_outcome as MirrorRunOutcome,
              message: row.last_message,
              bytes: Number(row.last_bytes ?? 0),
            },
    },
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** The fields a configuration change may set, and the robot it may move to. */
export type MirrorChanges = Partial<MirrorFields> & { startAt?: number; robotId?: number };

export type MirrorDeleteResult = 'deleted' | 'missing' | 'syncing';

/**
 * Mirror configurations, for the configuration side: create, change, delete, sync-now and cancel.
 * None of these writes touches the lease of a run in flight (`sync_txn`, `sync_expires_at`, `sync_holder`,
 * `run_*`), so that the worker running it can still renew and release it; only sync-now, which is refused
 * while SYNCING, and a cancel of a run not yet claimed rotate `sync_txn` (a claim that read the old state
 * then loses its compare-and-swap).
 */
export class MirrorStore {
  constructor(
    protected readonly db: Kysely<Database>,
    protected readonly dialect: DialectAdapter,
  ) {}

  /** The mirror of the repository, or undefined. */
  async find(repositoryId: number): Promise<MirrorRecord | undefined> {
    const row = await selectMirrors(this.db).where('m.repository_id', '=', repositoryId).executeTakeFirst();
    return row && toMirrorRecord(row);
  }

  /** Whether any repository of the namespace is a mirror. */
  async anyInNamespace(namespaceId: number): Promise<boolean> {
    const row = await this.db
      .selectFrom('repository_mirrors as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select('m.repository_id')
      .where('r.namespace_id', '=', namespaceId)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Makes the repository a mirror, in one transaction: the row (status NEVER_RUN, 3 retries, due at
   * `startAt`), the repository's state MIRROR and its mirror robot. Undefined when it already has one.
   */
  async create(repositoryId: number, fields: MirrorFields, opts: { startAt: number; robotId: number; now: number }): Promise<MirrorRecord | undefined> {
    try {
      await this.db.transaction().execute(async (tx) => {
        await tx
          .insertInto('repository_mirrors')
          .values({ ...(columns(fields) as Insertable<RepositoryMirrorsTable>), repository_id: repositoryId, sync_start_at: opts.startAt, sync_txn: randomUUID(), created_at: opts.now, updated_at: opts.now })
          .execute();
        await tx.updateTable('repositories').set({ state: 'MIRROR', mirror_robot_id: opts.robotId }).where('id', '=', repositoryId).execute();
      });
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return undefined;
      throw err;
    }
    return this.find(repositoryId);
  }

  /** Changes the fields given (and the mirror robot); undefined when the repository has no mirror. */
  async update(repositoryId: number, changes: MirrorChanges, now: number): Promise<MirrorRecord | undefined> {
    const { startAt, robotId, ...fields } = changes;
    const found = await this.db.transaction().execute(async (tx) => {
      const res = await tx
        .updateTable('repository_mirrors')
        .set({ ...columns(fields), ...(startAt !== undefined ? { sync_start_at: startAt } : {}), updated_at: now })
        .where('repository_id', '=', repositoryId)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      if (robotId !== undefined) await tx.updateTable('repositories').set({ mirror_robot_id: robotId }).where('id', '=', repositoryId).execute();
      return true;
    });
    return found ? this.find(repositoryId) : undefined;
  }

  /**
   * Ends the mirroring: deletes the row and turns the repository back to NORMAL without a mirror robot,
   * in one transaction. 'syncing' (nothing changed) while a run holds a lease that has not expired.
   */
  async delete(repositoryId: number, now: number): Promise<MirrorDeleteResult> {
    return this.db.transaction().execute(async (tx) => {
      const res = await tx
        .deleteFrom('repository_mirrors')
        .where('repository_id', '=', repositoryId)
        .where((eb) => eb.or([eb('sync_status', '<>', 'SYNCING'), eb('sync_expires_at', 'is', null), eb('sync_expires_at', '<=', now)]))
        .executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) {
        const row = await tx.selectFrom('repository_mirrors').select('repository_id').where('repository_id', '=', repositoryId).executeTakeFirst();
        return row ? 'syncing' : 'missing';
      }
      await tx.updateTable('repositories').set({ state: 'NORMAL', mirror_robot_id: null }).where('id', '=', repositoryId).execute();
      return 'deleted';
    });
  }

  /**
   * Asks for a run now (Quay's sync-now): SYNC_NOW, no lease, at least one retry, a new `sync_txn`.
   * Undefined, changing nothing, when there is no mirror or it is SYNCING.
   */
  async syncNow(repositoryId: number, now: number): Promise<MirrorRecord | undefined> {
    const res = await this.db
      .updateTable('repository_mirrors')
      .set((eb) => ({
        sync_status: 'SYNC_NOW',
        sync_expires_at: null,
        sync_retries_remaining: eb.case().when('sync_retries_remaining', '<', 1).then(1).else(eb.ref('sync_retries_remaining')).end(),
        sync_txn: randomUUID(),
        updated_at: now,
      }))
      .where('repository_id', '=', repositoryId)
      .where('sync_status', '<>', 'SYNCING')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) ? this.find(repositoryId) : undefined;
  }

  /**
   * Cancels a run in flight or asked for (Quay's sync-cancel): CANCEL with no retries left, so that it
   * runs again only on sync-now. Only from SYNCING or SYNC_NOW; undefined otherwise. The worker of a
   * SYNCING run keeps its `sync_txn` (it stops at the next tag and releases the mirror as cancelled).
   */
  async cancel(repositoryId: number, now: number): Promise<MirrorRecord | undefined> {
    const res = await this.db
      .updateTable('repository_mirrors')
      .set((eb) => ({
        sync_status: 'CANCEL',
        sync_retries_remaining: 0,
        sync_txn: eb.case().when('sync_status', '=', 'SYNC_NOW').then(randomUUID()).else(eb.ref('sync_txn')).end(),
        updated_at: now,
      }))
      .where('repository_id', '=', repositoryId)
      .where('sync_status', 'in', ['SYNCING', 'SYNC_NOW'])
      .executeTakeFirst();
    return Number(res.numUpdatedRows) ? this.find(repositoryId) : undefined;
  }
}

/** The columns of the fields given (absent fields are left out). */
function columns(f: Partial<MirrorFields>): Partial<Insertable<RepositoryMirrorsTable>> {
  const out: Partial<Insertable<RepositoryMirrorsTable>> = {};
  const flag = (v: boolean) => (v ? 1 : 0);
  if (f.enabled !== undefined) out.is_enabled = flag(f.enabled);
  if (f.externalReference !== undefined) out.external_reference = f.externalReference;
  if (f.usernameEnc !== undefined) out.username_enc = f.usernameEnc;
  if (f.passwordEnc !== undefined) out.password_enc = f.passwordEnc;
  if (f.verifyTls !== undefined) out.verify_tls = flag(f.verifyTls);
  if (f.unsignedImages !== undefined) out.unsigned_images = flag(f.unsignedImages);
  if (f.proxy !== undefined) out.proxy = JSON.stringify(f.proxy);
  if (f.tagGlobs !== undefined) out.root_rule = JSON.stringify(f.tagGlobs);
  if (f.architectures !== undefined) out.architecture_filter = JSON.stringify(f.architectures);
  if (f.rollbackOnFailure !== undefined) out.rollback_on_failure = flag(f.rollbackOnFailure);
  if (f.syncIntervalS !== undefined) out.sync_interval_s = f.syncIntervalS;
  if (f.timeoutS !== undefined) out.timeout_s = f.timeoutS;
  return out;
}
