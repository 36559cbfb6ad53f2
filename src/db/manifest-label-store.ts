/** Labels added to manifests through the API (a manifest's own labels come from its image configuration). */
import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

export interface ManifestLabelRecord {
  uuid: string;
  key: string;
  value: string;
  mediaType: string;
  createdAt: number;
}

type Row = Database['manifest_labels'];

export class ManifestLabelStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** The manifest's labels, oldest first; only those whose key starts with `prefix` when given. */
  async list(manifestId: number, prefix?: string): Promise<ManifestLabelRecord[]> {
    const rows = await this.db.selectFrom('manifest_labels').selectAll().where('manifest_id', '=', manifestId).orderBy('created_at').orderBy('uuid').execute();
    // Filtered here: keys are short and few, and a LIKE prefix would need escaping per dialect.
    return rows.filter((r) => prefix === undefined || r.key.startsWith(prefix)).map(toRecord);
  }

  async find(manifestId: number, uuid: string): Promise<ManifestLabelRecord | undefined> {
    const row = await this.db.selectFrom('manifest_labels').selectAll().where('manifest_id', '=', manifestId).where('uuid', '=', uuid).executeTakeFirst();
    return row && toRecord(row);
  }

  /** Adds a label; false when the manifest no longer exists. */
  async create(manifestId: number, label: ManifestLabelRecord): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      if (!(await tx.selectFrom('manifests').select('id').where('id', '=', manifestId).executeTakeFirst())) return false;
      await tx
        .insertInto('manifest_labels')
        .values({ uuid: label.uuid, manifest_id: manifestId, key: label.key, value: label.value, media_type: label.mediaType, created_at: label.createdAt })
        .execute();
      return true;
    });
  }

  /** Deletes the label; the deleted label, or undefined. */
  async delete(manifestId: number, uuid: string): Promise<ManifestLabelRecord | undefined> {
    const row = await this.db.deleteFrom('manifest_labels').where('manifest_id', '=', manifestId).where('uuid', '=', uuid).returningAll().executeTakeFirst();
    return row && toRecord(row);
  }
}

function toRecord(r: Row): ManifestLabelRecord {
  return { uuid: r.uuid, key: r.key, value: r.value, mediaType: r.media_type, createdAt: Number(r.created_at) };
}
