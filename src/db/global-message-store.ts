/** Messages superusers publish to every user, oldest first. */
import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

export interface GlobalMessageRecord {
  uuid: string;
  content: string;
  mediaType: string;
  severity: string;
  createdAt: number;
}

export class GlobalMessageStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(message: Omit<GlobalMessageRecord, 'createdAt'>): Promise<GlobalMessageRecord> {
    const createdAt = Date.now();
    await this.db
      .insertInto('global_messages')
      .values({ uuid: message.uuid, content: message.content, media_type: message.mediaType, severity: message.severity, created_at: createdAt })
      .execute();
    return { ...message, createdAt };
  }

  async list(): Promise<GlobalMessageRecord[]> {
    const rows = await this.db.selectFrom('global_messages').selectAll().orderBy('created_at').orderBy('uuid').execute();
    return rows.map((r) => ({ uuid: r.uuid, content: r.content, mediaType: r.media_type, severity: r.severity, createdAt: r.created_at }));
  }

  /** False if there was no such message. */
  async delete(uuid: string): Promise<boolean> {
    const res = await this.db.deleteFrom('global_messages').where('uuid', '=', uuid).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
}
