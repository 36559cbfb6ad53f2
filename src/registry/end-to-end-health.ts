/**
 * `/health/endtoend` (Quay's end-to-end check): the database and every storage location. The answer
 * counts `database` and `storage`; `storage` fails only when this process's preferred location (the
 * first of its preference) fails — another location failing is reported in the detail but leaves the
 * process healthy, as Quay's storage check does, so that a global load balancer moves traffic away from
 * a region only when its own storage is gone.
 */
import type { StorageLocation } from '../storage/locations.js';
import type { Logger } from '../observability/logger.js';
import { StorageHealth } from './storage-health.js';

export interface ServiceStatus {
  status: boolean;
  failure?: string;
}

export interface EndToEndReport {
  /** What the HTTP status is made of. */
  services: { database: boolean; storage: boolean };
  /** Each check: `database`, and `storage:<location>` for every location. */
  expanded: Record<string, ServiceStatus>;
}

export class EndToEndHealth {
  private readonly locations: Array<{ name: string; health: StorageHealth }>;

  constructor(
    private readonly database: () => Promise<boolean>,
    /** Most preferred first. */
    locations: readonly StorageLocation[],
    opts: { log?: Logger } = {},
  ) {
    this.locations = locations.map((l) => ({ name: l.name, health: new StorageHealth(l.driver, { log: opts.log }) }));
  }

  async check(): Promise<EndToEndReport> {
    const [database, ...storage] = await Promise.all([this.database(), ...this.locations.map((l) => l.health.status())]);
    const expanded: Record<string, ServiceStatus> = { database: { status: database } };
    this.locations.forEach((l, i) => {
      const s = storage[i]!;
      expanded[`storage:${l.name}`] = s.up ? { status: true } : { status: false, failure: s.failure };
    });
    return { services: { database, storage: storage[0]!.up }, expanded };
  }
}
