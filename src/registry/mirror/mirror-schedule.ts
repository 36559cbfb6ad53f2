/** What a mirror worker needs of the schedule of mirrors (db/mirror-schedule-store.ts states the rules). */
import type { MirrorScheduleStore } from '../../db/mirror-schedule-store.js';

export type { MirrorClaim, MirrorProgress, MirrorRelease } from '../../db/mirror-schedule-store.js';

/** Claim due mirrors, keep and report on a claim, and give it back. */
export type MirrorSchedule = Pick<MirrorScheduleStore, 'claimDue' | 'renew' | 'progress' | 'release' | 'abandon'>;
