/**
 * Robot accounts `<namespace>+<short>` of users and organizations. The token is 256 random bits, shown
 * once when the robot is created or regenerated; only its SHA-256 is stored. Deleting a robot deletes
 * its permissions in the same transaction.
 */
import type { NamespaceStore } from '../../db/namespace-store.js';
import type { RobotRecord, RobotStore } from '../../db/robot-store.js';
import type { Principal } from '../access.js';
import { AccountError } from './account-error.js';
import { isLookupName, parseRobotName, validateRobotShortName } from './names.js';
import { constantTimeEqual, randomSecret, sha256 } from './passwords.js';

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
}

const MAX_DESCRIPTION = 4096;
/** Compared against when the robot does not exist, so that a miss costs what a hit costs. */
const NO_ROBOT_HASH = sha256(randomSecret());

export class RobotService {
  constructor(private readonly stores: RobotStores) {}

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
    const robot = await this.stores.robots.create(ns.id, { shortName, description, tokenHash: sha256(token) });
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
    await this.stores.robots.setTokenHash(robot.id, sha256(token));
    return { robot: robotInfo(robot), token };
  }

  /** Deletes the robot and every permission it held. */
  async delete(fullName: string): Promise<void> {
    const robot = await this.require(fullName);
    await this.stores.robots.delete(robot.id);
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
