/**
 * Why a mirror run or one of its tags failed, as Quay's `repository_mirror_sync_failures_total{reason}`
 * names it (plus `rate_limited`, `immutable_tag` and `quota`, which Wharf can tell apart).
 */
import { RegistryError } from '../../oci/errors.js';
import { isUpstreamError } from '../../upstream/errors.js';
import { TagImmutableError } from '../tag-immutability.js';

export type MirrorFailureReason =
  | 'auth_failed'
  | 'network_timeout'
  | 'connection_error'
  | 'not_found'
  | 'tls_error'
  | 'decryption_failed'
  | 'invalid_source_registry'
  | 'preempted'
  | 'rate_limited'
  | 'immutable_tag'
  | 'quota'
  | 'unknown_error';

/** The reason of a failure: an upstream error by its kind, a refusal of the local write by its code. */
export function failureReason(err: unknown): MirrorFailureReason {
  if (isUpstreamError(err)) {
    switch (err.kind) {
      case 'auth':
        return 'auth_failed';
      case 'not_found':
        return 'not_found';
      case 'rate_limited':
        return 'rate_limited';
      case 'blocked':
        return 'invalid_source_registry';
      case 'unavailable': {
        const text = `${err.message} ${String((err.cause as { code?: unknown } | undefined)?.code ?? '')}`;
        if (/CERT|TLS|SSL|self[- ]signed|certificate/i.test(text)) return 'tls_error';
        if (/timed out|within \d+ ms|stalled/i.test(text)) return 'network_timeout';
        return 'connection_error';
      }
      default:
        return 'unknown_error';
    }
  }
  if (err instanceof RegistryError) {
    if (err instanceof TagImmutableError) return 'immutable_tag';
    if (err.code === 'DENIED' && /quota/i.test(err.message)) return 'quota';
  }
  if (err instanceof Error && /timed out/i.test(err.message)) return 'network_timeout';
  return 'unknown_error';
}
