/**
 * What automation asks about the registry itself, in Quay's shapes:
 *
 *   GET /registry/capabilities   anyone        {sparse_manifests: {supported, required_architectures,
 *                                              optional_architectures_allowed}, mirror_architectures}
 *   GET /superuser/config        superusers    {"config": {...}}: the Quay configuration keys that
 *                                              describe what this registry does, with Wharf's values
 *
 * A push stores an index only when every child manifest is in the repository, so sparse manifests are
 * not supported for clients; `mirror_architectures` lists what a mirror's `architecture_filter` takes.
 * The configuration view names features and settings only: never a secret, a path or a database URL.
 */
import { z } from 'zod';
import { formatDuration } from '../../registry/time-machine.js';
import { defineRoute } from './route.js';
import { ARCHITECTURES } from '../../registry/mirror/mirror-config-input.js';

const ConfigSchema = z.strictObject({
  SERVER_HOSTNAME: z.string().nullable(),
  PREFERRED_URL_SCHEME: z.string().nullable(),
  AUTHENTICATION_TYPE: z.string(),
  FEATURE_PROXY_CACHE: z.boolean(),
  FEATURE_QUOTA_MANAGEMENT: z.boolean(),
  FEATURE_AUTO_PRUNE: z.boolean(),
  FEATURE_IMMUTABLE_TAGS: z.boolean(),
  FEATURE_SECURITY_SCANNER: z.boolean(),
  FEATURE_IMAGE_PULL_STATS: z.boolean(),
  FEATURE_GENERAL_OCI_SUPPORT: z.boolean(),
  FEATURE_SPARSE_INDEX: z.boolean(),
  TAG_EXPIRATION_OPTIONS: z.array(z.string()),
});

export const registryInfoRoutes = [
  defineRoute({
    method: 'GET',
    path: '/registry/capabilities',
    summary: 'What the registry supports (Quay\'s capabilities document); no authentication needed',
    tag: 'registry',
    response: z.strictObject({
      sparse_manifests: z.strictObject({ supported: z.boolean(), required_architectures: z.array(z.string()), optional_architectures_allowed: z.boolean() }),
      mirror_architectures: z.array(z.string()),
    }),
    async handler() {
      return { sparse_manifests: { supported: false, required_architectures: [], optional_architectures_allowed: false }, mirror_architectures: [...ARCHITECTURES].sort() };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/superuser/config',
    summary: "The registry's settings under Quay's configuration keys (features and options only, never secrets); superusers",
    tag: 'superuser',
    response: z.strictObject({ config: ConfigSchema }),
    async handler(ctx) {
      await ctx.superuser();
      const base = ctx.registry.options.baseUrl ? new URL(ctx.registry.options.baseUrl) : undefined;
      return {
        config: {
          SERVER_HOSTNAME: base ? base.host : null,
          PREFERRED_URL_SCHEME: base ? base.protocol.replace(/:$/, '') : null,
          AUTHENTICATION_TYPE: 'Database',
          FEATURE_PROXY_CACHE: ctx.registry.proxyConfig !== undefined,
          FEATURE_QUOTA_MANAGEMENT: true,
          FEATURE_AUTO_PRUNE: true,
          FEATURE_IMMUTABLE_TAGS: true,
          FEATURE_SECURITY_SCANNER: false,
          FEATURE_IMAGE_PULL_STATS: ctx.registry.audit !== undefined,
          FEATURE_GENERAL_OCI_SUPPORT: true,
          FEATURE_SPARSE_INDEX: false,
          TAG_EXPIRATION_OPTIONS: ctx.registry.timeMachine.options.map((s) => formatDuration(s * 1000)),
        },
      };
    },
  }),
];
