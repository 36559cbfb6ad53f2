/**
 * Robot accounts `<namespace>+<short>`: a namespace's non-human credentials. Logins are checked
 * against the SHA-256 of the token; a sealed copy (`tokenEnc`, opaque here) lets administrators read it again.
 */
import type { Kysely } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import { purgeGrants } from './grant-purge.js';
import { PreparedQuery } from './prepared-query.js';
import type { Database } from './tables.js';

export interface RobotRecord {
  id: number;
  namespaceId: number;
  namespace: string;
  shortName: string;
  /** `<namespace>+<short>` */
  name: string;
  description: string | null;
  tokenHash: string;
  /** The sealed token, or null. */
  tokenEnc: string | null;
  /** Whether the owning user or organization is enabled. */
  namespaceEnabled: boolean;
  createdAt: number;
}

type RobotRow = Parameters<typeof toRecord>[0];

export class RobotStore {
  // A robot's token subject and its access decisions look it up on every request: compiled once.
  private readonly byName: PreparedQuery<RobotRow, { namespace: string; name: string }>;
  private readonly byId: PreparedQuery<RobotRow, { id: number }>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {
    this.byName = new PreparedQuery<RobotRow, { namespace: string; name: string }>((p) => this.select().where('n.name', '=', p.namespace).where('r.name', '=', p.name), ['namespace', 'name']);
    this.byId = new PreparedQuery<RobotRow, { id: number }>((p) => this.select().where('r.id', '=', p.id), ['id']);
  }

  private select() {
    return this.db
      .selectFrom('robots as r')
      .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
      .select(['r.id', 'r.namespace_id', 'n.name as namespace', 'r.name', 'r.description', 'r.token_hash', 'r.token_enc', 'n.enabled', 'r.created_at']);
  }

  /** Creates a robot; undefined when the namespace already has one of that name. */
  async create(namespaceId: number, robot: { shortName: string; description: string | null; tokenHash: string; tokenEnc?: string | null }): Promise<RobotRecord | undefined> {
    let id: number;
    try {
      const row = await this.db
        .insertInto('robots')
        .values({ namespace_id: namespaceId, name: robot.shortName, description: robot.description, token_hash: robot.tokenHash, token_enc: robot.tokenEnc ?? null, created_at: Date.now() })
        .returning('id')
        .executeTakeFirstOrThrow();
      id = row.id;
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return undefined;
      throw err;
    }
    return this.findById(id);
  }

  async find(namespace: string, shortName: string): Promise<RobotRecord | undefined> {
    const row = await this.byName.first(this.db, { namespace, name: shortName });
    return row && toRecord(row);
  }

  async findById(id: number): Promise<RobotRecord | undefined> {
    const row = await this.byId.first(this.db, { id });
    return row && toRecord(row);
  }

  /** The namespace's robots by short name. */
  async list(namespaceId: number): Promise<RobotRecord[]> {
    const rows = await this.select().where('r.namespace_id', '=', namespaceId).orderBy('r.name').execute();
    return rows.map(toRecord);
  }

  /** Replaces the token hash (and its sealed copy): the old token stops working with this write. */
  async setTokenHash(id: number, tokenHash: string, tokenEnc: string | null = null): Promise<boolean> {
    const res = await this.db.updateTable('robots').set({ token_hash: tokenHash, token_enc: tokenEnc }).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Deletes the robot and, in the same transaction, every permission granted to it. */
  async delete(id: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      await purgeGrants(tx, 'robot', [id]);
      const res = await tx.deleteFrom('robots').where('id', '=', id).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    });
  }
}

function toRecord(row: {
  id: number;
  namespace_id: number;
  namespace: string;
  name: string;
  description: string | null;
  token_hash: string;
  token_enc: string | null;
  enabled: number;
  created_at: number;
}): RobotRecord {
  return {
    id: row.id,
    namespaceId: row.namespace_id,
    namespace: row.namespace,
    shortName: row.name,
    name: `${row.namespace}+${row.name}`,
    description: row.description,
    tokenHash: row.token_hash,
    tokenEnc: row.token_enc,
    namespaceEnabled: row.enabled === 1,
    createdAt: row.created_at,
  };
}
