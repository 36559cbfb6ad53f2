/** Users: a namespace of kind 'user' plus a users row (password hash, superuser flag), created together. */
import type { Kysely } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import { PreparedQuery } from './prepared-query.js';
import type { Database } from './tables.js';

export interface UserRecord {
  id: number;
  namespaceId: number;
  name: string;
  email: string | null;
  enabled: boolean;
  superuser: boolean;
  /** `scrypt$…`, or null for an account that cannot log in with a password. */
  passwordHash: string | null;
  createdAt: number;
}

export interface NewUser {
  name: string;
  email: string | null;
  passwordHash: string | null;
  superuser: boolean;
}

type UserRow = Parameters<typeof toRecord>[0];

export class UserStore {
  // Every authenticated request looks its user up (by name for a token's subject, by id for the
  // access decision): compiled once.
  private readonly byName: PreparedQuery<UserRow, { name: string }>;
  private readonly byId: PreparedQuery<UserRow, { id: number }>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {
    this.byName = new PreparedQuery<UserRow, { name: string }>((p) => this.select().where('n.name', '=', p.name), ['name']);
    this.byId = new PreparedQuery<UserRow, { id: number }>((p) => this.select().where('u.id', '=', p.id), ['id']);
  }

  private select() {
    return this.db
      .selectFrom('users as u')
      .innerJoin('namespaces as n', 'n.id', 'u.namespace_id')
      .select(['u.id', 'u.namespace_id', 'n.name', 'n.email', 'n.enabled', 'u.superuser', 'u.password_hash', 'u.created_at']);
  }

  /** Creates the user and its namespace in one transaction; undefined when the name is taken (by a user or an organization). */
  async create(user: NewUser): Promise<UserRecord | undefined> {
    const now = Date.now();
    try {
      await this.db.transaction().execute((tx) => insertUser(tx, user, now));
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return undefined;
      throw err;
    }
    return this.findByName(user.name);
  }

  /**
   * Creates the user only if there is no user yet, atomically (concurrent calls create one user at most):
   * undefined when users exist or the name is taken.
   */
  async createFirst(user: NewUser): Promise<UserRecord | undefined> {
    const now = Date.now();
    try {
      const created = await this.db.transaction().execute(async (tx) => {
        const lock = this.dialect.keyLock('first-user');
        if (lock) await lock.execute(tx);
        const any = await tx.selectFrom('users').select('id').limit(1).executeTakeFirst();
        if (any) return false;
        await insertUser(tx, user, now);
        return true;
      });
      if (!created) return undefined;
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return undefined;
      throw err;
    }
    return this.findByName(user.name);
  }

  async findByName(name: string): Promise<UserRecord | undefined> {
    const row = await this.byName.first(this.db, { name });
    return row && toRecord(row);
  }

  async findById(id: number): Promise<UserRecord | undefined> {
    const row = await this.byId.first(this.db, { id });
    return row && toRecord(row);
  }

  /** Users by name in byte order, after `last`, at most `limit`. */
  async list(opts: { last?: string; limit: number }): Promise<UserRecord[]> {
    let q = this.select().orderBy('n.name').limit(opts.limit);
    if (opts.last !== undefined) q = q.where('n.name', '>', opts.last);
    return (await q.execute()).map(toRecord);
  }

  async count(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async setPasswordHash(id: number, passwordHash: string | null): Promise<boolean> {
    const res = await this.db.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async setSuperuser(id: number, superuser: boolean): Promise<boolean> {
    const res = await this.db.updateTable('users').set({ superuser: superuser ? 1 : 0 }).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }
}

function toRecord(row: {
  id: number;
  namespace_id: number;
  name: string;
  email: string | null;
  enabled: number;
  superuser: number;
  password_hash: string | null;
  created_at: number;
}): UserRecord {
  return {
    id: row.id,
    namespaceId: row.namespace_id,
    name: row.name,
    email: row.email,
    enabled: row.enabled === 1,
    superuser: row.superuser === 1,
    passwordHash: row.password_hash,
    createdAt: row.created_at,
  };
}

/** The user's namespace row and user row, inside the caller's transaction. */
async function insertUser(tx: Kysely<Database>, user: NewUser, now: number): Promise<void> {
  const ns = await tx
    .insertInto('namespaces')
    .values({ name: user.name, kind: 'user', email: user.email, enabled: 1, created_at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  await tx
    .insertInto('users')
    .values({ namespace_id: ns.id, password_hash: user.passwordHash, superuser: user.superuser ? 1 : 0, created_at: now })
    .execute();
}
