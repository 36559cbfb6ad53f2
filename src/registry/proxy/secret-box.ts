/**
 * Encryption at rest of proxy-cache upstream credentials: AES-256-GCM, a fresh random 96-bit IV per
 * value, the field name as additional data (a username cannot be swapped into a password column).
 *
 *   sealed ::= "v1:" base64(iv) ":" base64(tag) ":" base64(ciphertext)
 *
 * The key is `proxy_cache.secret_key` (32 bytes as base64 or hex) or, when unset, 32 random bytes
 * generated on first start into `<data_dir>/proxy-secret.key` (mode 0600) and read from there later.
 * Several replicas on one database must share the key: configure it.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Config } from '../../config/schema.js';

export const SECRET_KEY_FILE = 'proxy-secret.key';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1';

/** A sealed value that cannot be opened: another key, a damaged or unknown format. */
export class SecretBoxError extends Error {
  override name = 'SecretBoxError';
}

/** A key that is missing, unreadable or not 32 bytes. */
export class SecretKeyError extends Error {
  override name = 'SecretKeyError';
}

export class SecretBox {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new SecretKeyError(`a secret key is ${KEY_BYTES} bytes, not ${key.length}`);
    this.key = Buffer.from(key);
  }

  /** Encrypts `plaintext` bound to `field`; every call gives a different string. */
  seal(plaintext: string, field: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(field, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${VERSION}:${iv.toString('base64')}:${cipher.getAuthTag().toString('base64')}:${ct.toString('base64')}`;
  }

  /** The plaintext of a `seal` result for the same `field`; SecretBoxError for another key or a damaged value. */
  open(sealed: string, field: string): string {
    const parts = sealed.split(':');
    if (parts.length !== 4 || parts[0] !== VERSION) throw new SecretBoxError(`not a ${VERSION} sealed value`);
    const [iv, tag, ct] = parts.slice(1).map((p) => Buffer.from(p, 'base64')) as [Buffer, Buffer, Buffer];
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new SecretBoxError('damaged sealed value');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(field, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretBoxError('the value was encrypted with another key, or it is damaged');
    }
  }
}

/** 32 bytes from 64 hex digits or base64 (standard or URL-safe, padding optional); SecretKeyError otherwise. */
export function parseSecretKey(text: string, source = 'proxy_cache.secret_key'): Buffer {
  const t = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(t)) key = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!key || key.length !== KEY_BYTES) {
    throw new SecretKeyError(`${source} must be ${KEY_BYTES} bytes written as 64 hex digits or as base64 (e.g. the output of \`openssl rand -base64 32\`)`);
  }
  return key;
}

export interface SecretKeySource {
  key: Buffer;
  /** Where it came from: the configuration, an existing key file, or a file generated now. */
  origin: 'config' | 'file' | 'generated';
  path?: string;
}

/**
 * The key of `proxy_cache.secret_key`, else the one in `<data_dir>/proxy-secret.key`, else a new random
 * key written there (mode 0600, never overwritten: a process that loses the race reads the winner's).
 */
export async function loadOrCreateSecretKey(config: Pick<Config, 'data_dir' | 'proxy_cache'>): Promise<SecretKeySource> {
  if (config.proxy_cache.secret_key !== undefined) return { key: parseSecretKey(config.proxy_cache.secret_key), origin: 'config' };
  const path = resolve(join(config.data_dir, SECRET_KEY_FILE));
  const read = async () => parseSecretKey(await readFile(path, 'utf8'), path);
  try {
    return { key: await read(), origin: 'file', path };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw wrap(err, path);
  }
  const key = randomBytes(KEY_BYTES);
  try {
    await mkdir(config.data_dir, { recursive: true });
    await writeFile(path, `${key.toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
    return { key, origin: 'generated', path };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { key: await read().catch((e: unknown) => Promise.reject(wrap(e, path))), origin: 'file', path };
    throw wrap(err, path);
  }
}

function wrap(err: unknown, path: string): Error {
  if (err instanceof SecretKeyError) return err;
  return new SecretKeyError(`cannot read or create the proxy-cache secret key ${path}: ${(err as Error).message}`);
}

/** A SecretBox whose key is loaded (or generated) on first use, so that nothing is written before it is needed. */
export function lazySecretBox(config: Pick<Config, 'data_dir' | 'proxy_cache'>): () => Promise<SecretBox> {
  let pending: Promise<SecretBox> | undefined;
  return () => {
    pending ??= loadOrCreateSecretKey(config).then(
      (s) => new SecretBox(s.key),
      (err: unknown) => {
        pending = undefined;
        throw err;
      },
    );
    return pending;
  };
}
