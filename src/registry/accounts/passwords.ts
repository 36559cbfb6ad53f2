/**
 * Secrets: password hashing with scrypt, random tokens and their digests, constant-time comparison.
 *
 * Password hashes are self-describing, so the cost can be raised later without breaking old hashes:
 *
 *   scrypt$<N>$<r>$<p>$<salt, base64>$<key, base64>      N = 2^15, r = 8, p = 1, 16-byte salt, 64-byte key
 *
 * Tokens (robot tokens, API tokens) carry 256 random bits, so a single unsalted SHA-256 is enough to store
 * them: nobody can brute-force the preimage of a random 256-bit value, and the digest lets the database
 * find a token by an indexed equality lookup.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export const SCRYPT_PARAMS = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });
const SALT_BYTES = 16;
const KEY_BYTES = 64;
/** Upper bounds accepted when reading a stored hash, so a corrupt row cannot make a login burn GBs. */
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;
/** Passwords longer than this are refused before any hashing (a cheap denial-of-service guard). */
export const MAX_PASSWORD_LENGTH = 1024;

function scrypt(password: string, salt: Buffer, keylen: number, opts: { N: number; r: number; p: number }): Promise<Buffer> {
  // scrypt needs 128·N·r·p bytes; Node's default ceiling (32 MiB) is exactly N=2^15,r=8 and refuses it.
  const options: ScryptOptions = { ...opts, maxmem: 128 * opts.N * opts.r * opts.p + 32 * 1024 * 1024 };
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** A new `scrypt$…` hash of the password with a fresh random salt. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password.normalize('NFC'), salt, KEY_BYTES, SCRYPT_PARAMS);
  const { N, r, p } = SCRYPT_PARAMS;
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/**
 * Whether `password` matches the stored hash, compared in constant time. A malformed hash never matches
 * (and never throws), so callers can treat "no such user" and "bad hash" alike.
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![N, r, p].every(Number.isSafeInteger) || N < 2 || N > MAX_N || (N & (N - 1)) !== 0 || r < 1 || r > MAX_R || p < 1 || p > MAX_P) return false;
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (salt.length === 0 || expected.length < 16 || expected.length > 256) return false;
  if (password.length > MAX_PASSWORD_LENGTH) return false;
  const actual = await scrypt(password.normalize('NFC'), salt, expected.length, { N, r, p });
  return timingSafeEqual(actual, expected);
}

/** Whether a stored hash uses weaker parameters than today's (the caller may rehash after a login). */
export function needsRehash(encoded: string): boolean {
  const parts = encoded.split('$');
  return parts[0] !== 'scrypt' || Number(parts[1]) < SCRYPT_PARAMS.N || Number(parts[2]) < SCRYPT_PARAMS.r || Number(parts[3]) < SCRYPT_PARAMS.p;
}

/** 32 random bytes, base64url: a token or a generated password. */
export function randomSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Hex SHA-256 of a high-entropy token, as stored in the database. */
export function sha256(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Whether two strings are equal, in constant time: both sides are hashed to 32 bytes first, so neither
 * the position of the first difference nor the lengths leak.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}
