/** The OIDC issuer and subject pairs trusted to act as a robot, kept in the order they were given. */
import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

export interface FederationEntry {
  issuer: string;
  subject: string;
}

export class RobotFederationStore {
  constructor(private readonly db: Kysely<Database>) {}

  async list(robotId: number): Promise<FederationEntry[]> {
    return this.db.selectFrom('robot_federations').select(['issuer', 'subject']).where('robot_id', '=', robotId).orderBy('position').execute();
  }

  /** Replaces the robot's whole list in one transaction (an empty list clears it). Entries must be distinct. */
  async replace(robotId: number, entries: readonly FederationEntry[]): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('robot_federations').where('robot_id', '=', robotId).execute();
      if (entries.length) {
        await tx
          .insertInto('robot_federations')
          .values(entries.map((e, position) => ({ robot_id: robotId, position, issuer: e.issuer, subject: e.subject })))
          .execute();
      }
    });
  }
}
