/**
 * What makes an organization a proxy cache: the upstream it caches and how. One row per organization
 * (migration 0003, `proxy_cache_configs`); credentials are stored encrypted (`secret-box.ts`) and are
 * never returned by the API.
 */

export interface ProxyCacheSettings {
  /** As configured: `docker.io`, `quay.io`, `host:port`, or `host[:port]/namespace` (then clients omit that namespace). */
  upstreamRegistry: string;
  /** Plain HTTP to the upstream. */
  insecure: boolean;
  /** Seconds a cached tag stays servable without a successful upstream check; 0 = never expires. Default 86400. */
  expirationS: number;
  /** Unauthenticated clients (e.g. Kubernetes nodes) may pull through and fill the cache. Default false. */
  anonymousPull: boolean;
  /** Seconds an upstream answer for a tag is reused before asking again (0 = ask on every pull). Default 0. */
  revalidateIntervalS: number;
  /** After a manifest is pulled, fetch all its layers in the background. Default false. */
  prefetchLayers: boolean;
  /**
   * Registry hosts this organization answers for when a mirror client (containerd) sends `?ns=<host>`;
   * lower case `host[:port]`. Default: the upstream's registry host (`docker.io` for Docker Hub).
   */
  answersFor: string[];
}

export interface ProxyCacheConfig extends ProxyCacheSettings {
  namespaceId: number;
  /** The organization's name. */
  organization: string;
  /** Decrypted upstream credentials, when configured. */
  credentials?: { username: string; password: string };
  createdAt: number;
  updatedAt: number;
}

export const DEFAULT_EXPIRATION_S = 86_400;

/** Longest `expiration_s`: ten years. */
export const MAX_EXPIRATION_S = 10 * 365 * 86_400;
/** Longest `revalidate_interval_s`: an hour. */
export const MAX_REVALIDATE_INTERVAL_S = 3_600;

/** A configuration as the API, the CLI and `nodes-config` show it: no credentials, only whether there are some. */
export interface ProxyCacheSummary extends ProxyCacheSettings {
  namespaceId: number;
  organization: string;
  hasCredentials: boolean;
  createdAt: number;
  updatedAt: number;
}
