/** Keys that sign registry bearer tokens, identified by `kid`; the newest one signs, all of them verify. */
import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

export interface SigningKeyRecord {
  kid: string;
  algorithm: string;
  /** The private key as a JWK (JSON text). */
  privateJwk: string;
  createdAt: number;
}

export class SigningKeyStore {
  constructor(private readonly db: Kysely<Database>) {}

  private select() {
    return this.db.selectFrom('signing_keys').select(['kid', 'algorithm', 'private_jwk', 'created_at']);
  }

  /** The newest key (ties broken by kid, so every replica picks the same one), or undefined. */
  async latest(): Promise<SigningKeyRecord | undefined> {
    const row = await this.select().orderBy('created_at', 'desc').orderBy('kid').limit(1).executeTakeFirst();
    return row && toRecord(row);
  }

  async find(kid: string): Promise<SigningKeyRecord | undefined> {
    const row = await this.select().where('kid', '=', kid).executeTakeFirst();
    return row && toRecord(row);
  }

  /** Every key, newest first. */
  async list(): Promise<SigningKeyRecord[]> {
    return (await this.select().orderBy('created_at', 'desc').orderBy('kid').execute()).map(toRecord);
  }

  /** Stores a key; a key with the same kid is left as it is. */
  async insert(key: SigningKeyRecord): Promise<void> {
    await this.db
      .insertInto('signing_keys')
      .values({ kid: key.kid, algorithm: key.algorithm, private_jwk: key.privateJwk, created_at: key.createdAt })
      .onConflict((oc) => oc.column('kid').doNothing())
      .execute();
  }
}

function toRecord(row: { kid: string; algorithm: string; private_jwk: string; created_at: number }): SigningKeyRecord {
  return { kid: row.kid, algorithm: row.algorithm, privateJwk: row.private_jwk, createdAt: row.created_at };
}
