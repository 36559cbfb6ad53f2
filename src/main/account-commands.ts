/**
 * `wharf user|org|robot …`: scripted account setup against the configured database (the same
 * `--config` and `WHARF_*` variables as `wharf serve`). Secrets shown once (a generated password, a
 * robot token) go alone on stdout, so scripts can capture them; messages go to stderr.
 */
import type { Config } from '../config/schema.js';
import { isAccountError } from '../registry/accounts/account-error.js';
import { randomSecret } from '../registry/accounts/passwords.js';
import { RepositoryStore } from '../db/repository-store.js';
import type { DatabaseHandle } from '../db/connect.js';
import { parseRepositoryName } from '../oci/reference.js';
import type { RepositoryRole } from '../registry/accounts/roles.js';
import { RepositoryService } from '../registry/repositories.js';
import { createAccountServices, createDatabase } from './compose.js';

const isRepositoryRole = (r: string): r is RepositoryRole => r === 'read' || r === 'write' || r === 'admin';

export class UsageError extends Error {}

export interface CommandOptions {
  password?: string;
  'password-stdin'?: boolean;
  superuser?: boolean;
  email?: string;
  owner?: string;
  description?: string;
  repo?: string[];
  role?: string;
}

const ALLOWED: Record<string, Array<keyof CommandOptions>> = {
  'user create': ['password', 'password-stdin', 'superuser', 'email'],
  'user passwd': ['password', 'password-stdin'],
  'org create': ['email', 'owner'],
  'robot create': ['description', 'repo', 'role'],
};

export const ACCOUNT_COMMANDS = Object.keys(ALLOWED);

/** Runs one account command; returns the exit code (1: not found or conflict; 2: usage or invalid input). */
export async function runAccountCommand(command: string, args: string[], opts: CommandOptions, config: Readonly<Config>, stdin: () => Promise<string>): Promise<number> {
  const allowed = ALLOWED[command]!;
  const given = (Object.keys(opts) as Array<keyof CommandOptions>).filter((k) => opts[k] !== undefined);
  const extra = given.filter((k) => !allowed.includes(k));
  if (extra.length) throw new UsageError(`wharf ${command} does not take --${extra.join(', --')}`);
  if (args.length !== 1) throw new UsageError(`wharf ${command} takes exactly one name`);
  if (opts.password !== undefined && opts['password-stdin']) throw new UsageError('give --password or --password-stdin, not both');
  const name = args[0]!;
  const password = opts['password-stdin'] ? (await stdin()).replace(/\r?\n$/, '') : opts.password;

  return withDatabase(config, async (db) => {
    const repositories = new RepositoryService(new RepositoryStore(db.db, db.dialect));
    const accounts = createAccountServices(db, config, repositories);
    const actor = { kind: 'system' as const, name: 'cli' };
    switch (command) {
      case 'user create': {
        const generated = password === undefined ? randomSecret() : undefined;
        const user = await accounts.accounts.createUser({ name, password: password ?? generated, email: opts.email, superuser: opts.superuser === true });
        await accounts.audit.record('user_create', { actor, namespace: user.name, metadata: { superuser: user.superuser } });
        process.stderr.write(`created ${user.superuser ? 'superuser' : 'user'} ${user.name}${generated ? '; its generated password (shown once) follows' : ''}\n`);
        if (generated) process.stdout.write(`${generated}\n`);
        return 0;
      }
      case 'user passwd': {
        if (password === undefined) throw new UsageError('give the new password with --password or --password-stdin');
        await accounts.accounts.setPassword(name, password);
        await accounts.audit.record('user_change_password', { actor, namespace: name });
        process.stderr.write(`changed the password of ${name}\n`);
        return 0;
      }
      case 'org create': {
        const owner = opts.owner ?? config.auth.admin_username;
        const org = await accounts.accounts.createOrganization({ name, email: opts.email, creator: owner });
        await accounts.audit.record('org_create', { actor, namespace: org.name, metadata: { owner } });
        process.stderr.write(`created organization ${org.name}, owned by ${owner}\n`);
        return 0;
      }
      case 'robot create': {
        const plus = name.indexOf('+');
        if (plus < 1 || plus === name.length - 1) throw new UsageError(`a robot is named <namespace>+<name>, e.g. myorg+ci (got ${JSON.stringify(name)})`);
        const role = opts.role ?? 'write';
        if (!isRepositoryRole(role)) throw new UsageError(`--role is read, write or admin (got ${JSON.stringify(role)})`);
        if (opts.role !== undefined && !opts.repo?.length) throw new UsageError('--role needs --repo');
        const repos = (opts.repo ?? []).map((r) => {
          const parsed = parseRepositoryName(r);
          if (!parsed.ok || !r.startsWith(`${name.slice(0, plus)}/`)) throw new UsageError(`--repo ${JSON.stringify(r)}: give a repository of ${name.slice(0, plus)}, e.g. ${name.slice(0, plus)}/app`);
          return parsed.name;
        });
        const { robot, token } = await accounts.robots.create(name.slice(0, plus), name.slice(plus + 1), { description: opts.description });
        await accounts.audit.record('create_robot', { actor, namespace: robot.namespace, metadata: { robot: robot.name } });
        for (const repoName of repos) {
          let repo = await repositories.details(repoName);
          if (!repo) {
            repo = (await repositories.create(repoName, { visibility: config.auth.default_visibility })).repository;
            await accounts.audit.record('create_repo', { actor, namespace: robot.namespace, repository: repo.name, metadata: { visibility: repo.visibility, via: 'cli' } });
          }
          await accounts.grants.setRepositoryPermission(repo, { kind: 'robot', name: robot.name }, role);
          await accounts.audit.record('change_repo_permission', { actor, namespace: robot.namespace, repository: repoName.slice(robot.namespace.length + 1), metadata: { robot: robot.name, role } });
        }
        process.stderr.write(`created robot ${robot.name}${repos.length ? ` with ${role} access to ${repos.join(', ')}` : ''}; its token follows (its administrators can read it again through the API)\n`);
        process.stdout.write(`${token}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  });
}

/**
 * Runs a command on the database and closes it: an account error (bad input, missing account) is
 * printed and becomes exit status 2 (invalid input) or 1; anything else propagates.
 */
export async function withDatabase(config: Readonly<Config>, run: (db: DatabaseHandle) => Promise<number>): Promise<number> {
  const db = await createDatabase(config);
  try {
    return await run(db);
  } catch (err) {
    if (isAccountError(err)) {
      process.stderr.write(`wharf: ${err.message}\n`);
      return err.type === 'invalid_request' ? 2 : 1;
    }
    throw err;
  } finally {
    await db.close();
  }
}
