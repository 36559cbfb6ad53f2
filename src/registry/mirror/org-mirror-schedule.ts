/** What the organization-mirror worker needs of the schedule of discoveries (db/org-mirror-schedule-store.ts states the rules). */
import type { OrgMirrorScheduleStore } from '../../db/org-mirror-schedule-store.js';

export type { OrgMirrorClaim } from '../../db/org-mirror-schedule-store.js';

/** Claim due discoveries, keep a claim, and give it back. */
export type OrgMirrorSchedule = Pick<OrgMirrorScheduleStore, 'claimDue' | 'renew' | 'release'>;
