/** OAuth applications of organizations (migrations/0008-sign-in.ts), by namespace and by client id. */
import type { Kysely, Selectable } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { Database, OAuthApplicationsTable } from './tables.js';

export type OAuthApplicationRecord = Omit<Selectable<OAuthApplicationsTable>, 'client_secret_hash'>;

export interface OAuthApplicationFields {
  name: string;
  description: string;
  application_uri: string;
  redirect_uri: string;
  avatar_email: string | null;
}

const COLUMNS = ['id', 'namespace_id', 'name', 'client_id', 'description', 'application_uri', 'redirect_uri', 'avatar_email', 'created_at'] as const;

export class OAuthApplicationStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {}

  /** Creates the application; undefined when the organization has one of that name already. */
  async create(namespaceId: number, fields: OAuthApplicationFields, clientId: string, clientSecretHash: string, now: number): Promise<OAuthApplicationRecord | undefined> {
    try {
      const row = await this.db
        .insertInto('oauth_applications')
        .values({ namespace_id: namespaceId, client_id: clientId, client_secret_hash: clientSecretHash, created_at: now, ...fields })
        .returning(COLUMNS)
        .executeTakeFirstOrThrow();
      return norm(row);
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return undefined;
      throw err;
    }
  }

  async list(namespaceId: number): Promise<OAuthApplicationRecord[]> {
    return (await this.db.selectFrom('oauth_applications').select(COLUMNS).where('namespace_id', '=', namespaceId).orderBy('name').execute()).map(norm);
  }

  async findByClientId(clientId: string): Promise<OAuthApplicationRecord | undefined> {
    const row = await this.db.selectFrom('oauth_applications').select(COLUMNS).where('client_id', '=', clientId).executeTakeFirst();
    return row && norm(row);
  }

  /** Replaces the fields; false when the application is gone, undefined when another one of the organization has the new name. */
  async update(id: number, fields: OAuthApplicationFields): Promise<boolean | undefined> {
    try {
      const res = await this.db.updateTable('oauth_applications').set(fields).where('id', '=', id).executeTakeFirst();
      return Number(res.numUpdatedRows) > 0;
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return undefined;
      throw err;
    }
  }

  /** Deletes the application and every token granted through it. */
  async delete(id: number): Promise<boolean> {
    const res = await this.db.deleteFrom('oauth_applications').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
}

function norm(row: OAuthApplicationRecord): OAuthApplicationRecord {
  return { ...row, id: Number(row.id), namespace_id: Number(row.namespace_id), created_at: Number(row.created_at) };
}
