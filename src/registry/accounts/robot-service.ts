/**
 * Robot accounts `<namespace>+<short>` of users and organizations. The token is 256 random bits. Logins
 * are checked against its SHA-256; with a secret box (the registry's secret key) the token is also kept
 * sealed (AES-256-GCM) so that the robot's administrators can read it again, as in Quay. Without a key,
 * or for a value sealed with another key, the token cannot be read back and is shown only when created
 * or regenerated. Deleting a robot deletes its permissions in the same transaction.
 */
import type { NamespaceStore } from '../../db/namespace-store.js';
import type { RobotFederationStore, FederationEntry } from '../../db/robot-federation-store.js';
import type { RobotRecord, RobotStore } from '../../db/robot-store.js';
import type { Principal } from '../access.js';
import { AccountError } from './account-error.js';
import { isLookupName, parseRobotName, validateRobotShortName } from './names.js';
import { constantTimeEqual, randomSecret, sha256 } from './passwords.js';
import type { SecretBox } from '../proxy/secret-box.js';

/** The SecretBox field robot tokens are sealed under. */
const TOKEN_FIELD = 'robot_token';

export type RobotPrincipal = Extract<Principal, { kind: 'robot' }>;

/** A robot as services hand it out: never the token or its hash. */
export interface RobotInfo {
  id: number;
  namespace: string;
  shortName: string;
  /** `<namespace>+<short>`: the robot's user name for `docker login` and Basic auth. */
  name: string;
  description: string | null;
  createdAt: number;
}

export interface RobotStores {
  namespaces: NamespaceStore;
  robots: RobotStore;
  federations: RobotFederationStore;
}

export type { FederationEntry };

/** At most this many federation entries per robot, each issuer and subject at most MAX_FEDERATION_TEXT characters. */
export const MAX_FEDERATIONS = 100;
export const MAX_FEDERATION_TEXT = 2048;

const MAX_DESCRIPTION = 4096;
/** Compared against when the robot does not exist, so that a miss costs what a hit costs. */
const NO_ROBOT_HASH = sha256(randomSecret());

export class RobotService {
  constructor(
    private readonly stores: RobotStores,
    private readonly opts: { secrets?: () => Promise<SecretBox> } = {},
  ) {}

  /** The token sealed for storage, or null when no key is at hand (the robot then works, but its token cannot be read back). */
  private async seal(token: string): Promise<string | null> {
    if (!this.opts.secrets) return null;
    try {
      return (await this.opts.secrets()).seal(token, TOKEN_FIELD);
    } catch {
      return null;
    }
  }

  /** The robot's current token, when it was kept sealed with the key at hand; undefined otherwise (also for unknown robots). */
  async token(fullName: string): Promise<string | undefined> {
    const robot = await this.find(fullName);
    if (!robot?.tokenEnc || !this.opts.secrets) return undefined;
    try {
      const token = (await this.opts.secrets()).open(robot.tokenEnc, TOKEN_FIELD);
      // Only a copy that still matches what logins are checked against is the token.
      return constantTimeEqual(sha256(token), robot.tokenHash) ? token : undefined;
    } catch {
      return undefined;
    }
  }

  /** Creates a robot in the namespace; returns the plaintext token, which is never shown again. */
  async create(namespace: string, shortName: string, opts: { description?: string | null } = {}): Promise<{ robot: RobotInfo; token: string }> {
    const ns = isLookupName(namespace) ? await this.stores.namespaces.findByName(namespace) : undefined;
    if (!ns) throw new AccountError('not_found', `user or organization ${String(namespace).slice(0, 100)} not found`);
    validateRobotShortName(shortName);
    const description = opts.description ?? null;
    if (description !== null && (typeof description !== 'string' || description.length > MAX_DESCRIPTION)) {
      throw new AccountError('invalid_request', `a description is at most ${MAX_DESCRIPTION} characters`);
    }
    const token = randomSecret();
    const robot = await this.stores.robots.create(ns.id, { shortName, description, tokenHash: sha256(token), tokenEnc: await this.seal(token) });
    if (!robot) throw new AccountError('conflict', `robot ${namespace}+${shortName} already exists`);
    return { robot: robotInfo(robot), token };
  }

  async get(fullName: string): Promise<RobotInfo | undefined> {
    const robot = await this.find(fullName);
    return robot && robotInfo(robot);
  }

  /** The namespace's robots by short name. */
  async list(namespace: string): Promise<RobotInfo[]> {
    const ns = isLookupName(namespace) ? await this.stores.namespaces.findByName(namespace) : undefined;
    if (!ns) throw new AccountError('not_found', `user or organization ${String(namespace).slice(0, 100)} not found`);
    return (await this.stores.robots.list(ns.id)).map(robotInfo);
  }

  /** Replaces the robot's token: the old one stops working now; the new one is returned once. */
  async regenerate(fullName: string): Promise<{ robot: RobotInfo; token: string }> {
    const robot = await this.require(fullName);
    const token = randomSecret();
    await this.stores.robots.setTokenHash(robot.id, sha256(token), await this.seal(token));
    return { robot: robotInfo(robot), token };
  }

  /** Deletes the robot and every permission it held. */
  async delete(fullName: string): Promise<void> {
    const robot = await this.require(fullName);
    await this.stores.robots.delete(robot.id);
  }

  /** The robot's federation entries (trusted OIDC issuer and subject pairs), in the order they were set. */
  async federation(fullName: string): Promise<FederationEntry[]> {
    const robot = await this.require(fullName);
    return this.stores.federations.list(robot.id);
  }

  /**
   * Replaces the robot's federation entries with `entries` (Quay's rules: each issuer is an http(s) URL,
   * each subject non-empty, no pair twice); returns what is stored.
   */
  async setFederation(fullName: string, entries: readonly FederationEntry[]): Promise<FederationEntry[]> {
    const robot = await this.require(fullName);
    if (entries.length > MAX_FEDERATIONS) throw new AccountError('invalid_request', `at most ${MAX_FEDERATIONS} federation entries`);
    const seen = new Set<string>();
    const clean: FederationEntry[] = [];
    for (const { issuer, subject } of entries) {
      if (!issuer || !subject) throw new AccountError('invalid_request', 'Missing one or more required fields (issuer, subject)');
      if (issuer.length > MAX_FEDERATION_TEXT || subject.length > MAX_FEDERATION_TEXT) throw new AccountError('invalid_request', `issuer and subject are at most ${MAX_FEDERATION_TEXT} characters`);
      if (!/^https?:\/\//.test(issuer)) throw new AccountError('invalid_request', 'Issuer must be a URL (http:// or https://)');
      const key = JSON.stringify([issuer, subject]);
      if (seen.has(key)) throw new AccountError('invalid_request', 'Duplicate federation config entry');
      seen.add(key);
      clean.push({ issuer, subject });
    }
    await this.stores.federations.replace(robot.id, clean);
    return clean;
  }

  /** The robot if the token is its current one and its namespace is enabled; undefined otherwise. */
  async verify(fullName: string, token: string): Promise<RobotPrincipal | undefined> {
    const robot = await this.find(fullName);
    const ok = constantTimeEqual(sha256(typeof token === 'string' ? token : ''), robot?.tokenHash ?? NO_ROBOT_HASH);
    if (!ok || !robot || !robot.namespaceEnabled) return undefined;
    return { kind: 'robot', id: robot.id, name: robot.name, namespaceId: robot.namespaceId };
  }

  private async find(fullName: string): Promise<RobotRecord | undefined> {
    const parsed = typeof fullName === 'string' ? parseRobotName(fullName) : undefined;
    return parsed && this.stores.robots.find(parsed.namespace, parsed.short);
  }

  private async require(fullName: string): Promise<RobotRecord> {
    const robot = await this.find(fullName);
    if (!robot) throw new AccountError('not_found', `robot ${String(fullName).slice(0, 300)} not found`);
    return robot;
  }
}

function robotInfo(r: RobotRecord): RobotInfo {
  return { id: r.id, namespace: r.namespace, shortName: r.shortName, name: r.name, description: r.description, createdAt: r.createdAt };
}
