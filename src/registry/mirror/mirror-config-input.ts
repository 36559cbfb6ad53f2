/**
 * What the API and the CLI may send to configure a repository mirror (Quay's JSON field names), and
 * the messages of its refusals (Quay's, where Quay has one, so that Quay clients recognise them).
 *
 *   POST  external_reference, sync_interval, sync_start_date, root_rule, robot_username required;
 *         skopeo_timeout_interval optional (default 300, Quay requires it)
 *   PUT   every field optional; a field present with a value changes it
 *
 * Types are checked here (a wrong type or null where none is allowed is a 400 before anything else is
 * looked at, as Quay's JSON schema does); the checks that need the repository or the network (robot,
 * SSRF guard, existing mirror) are the service's. Unknown fields are ignored, as Quay ignores them.
 */
import { z } from 'zod';

export const ALREADY_EXISTS = (repository: string) => `Mirror configuration already exits for repository ${repository}`;
export const NOT_ALLOWED = 'The provided registry location is not allowed';
export const BAD_DATE = 'Incorrect DateTime format for sync_start_date.';
export const TIMEOUT_TOO_SHORT_CREATE = 'Skopeo timeout interval cannot be less than 300 seconds';
export const TIMEOUT_TOO_SHORT_UPDATE = 'Skopeo timeout interval cannot be less than 300 seconds.';
export const EMPTY_RULE = 'validation failed: rule_value for TAG_GLOB_CSV must be a list with at least one rule';
export const PASSWORD_WITHOUT_USERNAME = 'Unable to set a new password without also specifying a username.';
export const DELETE_USERNAME_WITH_PASSWORD = 'Unable to delete username while setting a password.';
export const INVALID_ROBOT = 'Invalid robot';
export const UNKNOWN_ROBOT = 'Could not find robot with specified username';

/** Platforms `architecture_filter` may name (GOARCH values). */
export const ARCHITECTURES = ['amd64', 'arm64', 'arm', 'ppc64le', 's390x', '386', 'riscv64'] as const;
export const DEFAULT_TIMEOUT_S = 300;
export const MIN_TIMEOUT_S = 300;
/** Longest interval and timeout accepted: ten years (a database integer holds it on every dialect). */
export const MAX_SECONDS = 10 * 365 * 86_400;
export const MAX_GLOBS = 100;
export const MAX_GLOB_LENGTH = 255;

/** `message`, or "`name` is required" when the field is missing. */
const says = (name: string, message: string) => ({ error: (issue: { input?: unknown }) => (issue.input === undefined ? `${name} is required` : message) });
const flag = (name: string) => z.boolean(says(name, `${name} must be true or false`));
const text = (name: string, max: number) => z.string(says(name, `${name} must be text`)).max(max, { error: `${name} is at most ${max} characters` });
const proxyValue = (name: string) => text(name, 2048).nullable().optional();

const RootRule = z.object(
  {
    rule_kind: z.literal('tag_glob_csv', { error: 'validation failed: rule_kind must be tag_glob_csv' }),
    rule_value: z.array(z.string({ error: 'root_rule.rule_value holds tag globs (text)' }), { error: EMPTY_RULE }),
  },
  says('root_rule', 'root_rule must be {"rule_kind": "tag_glob_csv", "rule_value": [globs…]}'),
);

const RegistryConfig = z.object(
  {
    verify_tls: flag('external_registry_config.verify_tls').optional(),
    unsigned_images: flag('external_registry_config.unsigned_images').optional(),
    proxy: z
      .object(
        { http_proxy: proxyValue('proxy.http_proxy'), https_proxy: proxyValue('proxy.https_proxy'), no_proxy: proxyValue('proxy.no_proxy') },
        { error: 'external_registry_config.proxy must be an object of http_proxy, https_proxy and no_proxy' },
      )
      .optional(),
  },
  { error: 'external_registry_config must be an object' },
);

const FIELDS = {
  is_enabled: flag('is_enabled'),
  external_reference: z.string(says('external_reference', 'external_reference must be text: host[:port]/path/repository')),
  external_registry_username: text('external_registry_username', 1024).nullable(),
  external_registry_password: text('external_registry_password', 8192).nullable(),
  sync_start_date: z.string(says('sync_start_date', BAD_DATE)),
  sync_interval: z
    .number(says('sync_interval', 'sync_interval must be a whole number of seconds above 0'))
    .int({ error: 'sync_interval must be a whole number of seconds above 0' })
    .min(1, { error: 'sync_interval must be a whole number of seconds above 0' })
    .max(MAX_SECONDS, { error: `sync_interval is at most ${MAX_SECONDS} seconds` }),
  robot_username: z.string(says('robot_username', 'robot_username must be text: <namespace>+<name>')),
  root_rule: RootRule,
  external_registry_config: RegistryConfig,
  skopeo_timeout_interval: z
    .number({ error: 'skopeo_timeout_interval must be a whole number of seconds' })
    .int({ error: 'skopeo_timeout_interval must be a whole number of seconds' })
    .max(MAX_SECONDS, { error: `skopeo_timeout_interval is at most ${MAX_SECONDS} seconds` }),
  architecture_filter: z.array(z.string({ error: 'architecture_filter holds architecture names' }), { error: 'architecture_filter must be an array' }).nullable(),
  rollback_on_failure: flag('rollback_on_failure'),
};

/** Every field a body may have. */
export const FIELD_NAMES = Object.keys(FIELDS) as Array<keyof typeof FIELDS>;

/** The body of a create (POST). */
export const CreateSchema = z.object(FIELDS).partial({
  is_enabled: true,
  external_registry_username: true,
  external_registry_password: true,
  external_registry_config: true,
  skopeo_timeout_interval: true,
  architecture_filter: true,
  rollback_on_failure: true,
});
export type MirrorCreateInput = z.input<typeof CreateSchema>;

/** The body of a change (PUT): any subset. */
export const ChangesSchema = z.object(FIELDS).partial();
export type MirrorChangesInput = z.input<typeof ChangesSchema>;

/** Seconds since the epoch of exactly `YYYY-MM-DDTHH:MM:SSZ` (a real date), else undefined. */
export function parseStartDate(value: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  if (y < 1 || back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi || back.getUTCSeconds() !== s) {
    return undefined;
  }
  return ms;
}

/** `YYYY-MM-DDTHH:MM:SSZ` (what parseStartDate reads); null stays null. */
export function formatDate(ms: number | null): string | null {
  return ms === null ? null : `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

const TAG_CHAR = /[A-Za-z0-9_.-]/;

/**
 * Why `glob` can never match a tag, or undefined when it is a glob (fnmatch: `*`, `?`, `[seq]`,
 * `[!seq]`, the rest literal). A tag holds only `[A-Za-z0-9_.-]`, so any other character outside a
 * bracket expression (a space, `/`, `:`, a `,` of a comma-separated list, an unclosed `[`) is a mistake.
 */
export function globProblem(glob: string): string | undefined {
  if (glob.length === 0) return 'an empty glob matches no tag';
  if (glob.length > MAX_GLOB_LENGTH) return `a glob is at most ${MAX_GLOB_LENGTH} characters`;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' || c === '?' || TAG_CHAR.test(c)) continue;
    if (c === '[') {
      const close = glob.indexOf(']', glob[i + 1] === '!' ? i + 3 : i + 2);
      if (close < 0) return `"${glob}": "[" opens a character set that is never closed`;
      const set = glob.slice(glob[i + 1] === '!' ? i + 2 : i + 1, close);
      if (![...set].every((x) => TAG_CHAR.test(x))) return `"${glob}": a character set holds only tag characters [A-Za-z0-9_.-] (ranges with -)`;
      i = close;
      continue;
    }
    if (c === ',') return `"${glob}": give each glob as its own item of rule_value, not separated by commas`;
    return `"${glob}": ${JSON.stringify(c)} never appears in a tag (tags hold [A-Za-z0-9_.-]; globs add *, ? and [...])`;
  }
  return undefined;
}
