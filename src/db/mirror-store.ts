/**
 * Repository mirror configurations (`repository_mirrors`, one row per mirrored repository): the
 * record shape both the configuration side (create, change, show, sync-now, cancel) and the schedule
 * side (mirror-schedule-store.ts: claim, renew, progress, release) read. Credentials arrive already
 * encrypted and leave encrypted; JSON columns are parsed here, once.
 */
import type { Kysely, Selectable } from 'kysely';
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

/** Reads mirror configurations; the configuration side adds its writes here. */
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
}
