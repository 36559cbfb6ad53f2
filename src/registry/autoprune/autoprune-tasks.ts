/**
 * The auto-prune task table as the worker uses it: namespaces queued for a run, leased one at a time
 * (`lease` hands a due namespace to exactly one process), finished or dropped, and listed for a dry
 * run. db/autoprune-store.ts implements it; the composition root hands that store to the worker.
 */
import type { AutopruneStore, TaskLease } from '../../db/autoprune-store.js';

export type { TaskLease };

export type AutopruneTasks = Pick<AutopruneStore, 'queueMissing' | 'lease' | 'finish' | 'dropTask' | 'namespaces'>;
