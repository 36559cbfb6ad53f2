/**
 * Docker registry bearer tokens: ES256 JWTs signed with the newest key of SigningKeyService (generated
 * with `jose` and stored on first use, so every replica signs and verifies with the same keys).
 *
 *   header  { alg: "ES256", kid }
 *   claims  { iss: service, aud: service, sub: account name (absent for anonymous), access: [{type, name, actions}],
 *             iat, nbf, exp, jti, uid (the account's id), and tid (the API token's id) when the subject
 *             logged in with an API token }
 *
 * A token proves who asked and what was granted at issue time; callers re-resolve the subject on every
 * request, so a deleted or disabled account loses access at once, and cap what the account may do by
 * the token's `access`.
 */
import { randomUUID } from 'node:crypto';
import { decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { SigningKey, SigningKeyService } from './signing-key-service.js';

export const TOKEN_ALGORITHM = 'ES256';

export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

export interface IssuedToken {
  token: string;
  /** Seconds. */
  expiresIn: number;
  /** RFC 3339. */
  issuedAt: string;
}

export interface VerifiedToken {
  /** Undefined for an anonymous token. */
  subject?: string;
  /** The API token the subject logged in with (claim `tid`), if any. */
  apiTokenId?: number;
  /** The subject's account id (claim `uid`): a re-created account of the same name is another account. */
  subjectId?: number;
  access: TokenAccess[];
}

const VERIFIED_CACHE_MAX = 10_000;

export class RegistryTokens {
  private signer?: Promise<{ kid: string; key: CryptoKey }>;
  private readonly verifiers = new Map<string, Promise<CryptoKey | undefined>>();
  private readonly now: () => number;

  constructor(
    private readonly keys: SigningKeyService,
    private readonly opts: { ttlMs: number; now?: () => number },
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Loads (or, on the very first start, generates and stores) the signing key; safe to call again. */
  ready(): Promise<void> {
    return this.signingKey().then(() => undefined);
  }

  /** A signed token for `subject` (undefined: anonymous) granting `access`, for `service`. */
  async issue(service: string, subject: string | undefined, access: TokenAccess[], apiTokenId?: number, subjectId?: number): Promise<IssuedToken> {
    const { kid, key } = await this.signingKey();
    const iat = Math.floor(this.now() / 1000);
    const ttl = Math.max(1, Math.floor(this.opts.ttlMs / 1000));
    const claims: Record<string, unknown> = { access };
    if (apiTokenId !== undefined) claims.tid = apiTokenId;
    if (subjectId !== undefined) claims.uid = subjectId;
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: TOKEN_ALGORITHM, kid, typ: 'JWT' })
      .setIssuer(service)
      .setAudience(service)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + ttl)
      .setJti(randomUUID());
    if (subject !== undefined) jwt.setSubject(subject);
    return { token: await jwt.sign(key), expiresIn: ttl, issuedAt: new Date(iat * 1000).toISOString() };
  }

  /** The token's subject and access if its signature, issuer, audience and times check out; else undefined. */
  async verify(token: string, service: string): Promise<VerifiedToken | undefined> {
    // A token's claims never change, so a signature checked once need not be checked again until the
    // token expires. Who the subject is and what it may do are still re-read on every request.
    const cacheKey = `${service}\u0000${token}`;
    const cached = this.verified.get(cacheKey);
    if (cached) {
      if (cached.expiresAt > this.now()) return cached.result;
      this.verified.delete(cacheKey);
    }
    const result = await this.verifyOnce(token, service);
    if (result && result.expiresAt !== undefined) {
      if (this.verified.size >= VERIFIED_CACHE_MAX) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(cacheKey, { result: result.token, expiresAt: result.expiresAt });
    }
    return result?.token;
  }

  private readonly verified = new Map<string, { result: VerifiedToken; expiresAt: number }>();

  private async verifyOnce(token: string, service: string): Promise<{ token: VerifiedToken; expiresAt?: number } | undefined> {
    try {
      const { kid, alg } = decodeProtectedHeader(token);
      if (alg !== TOKEN_ALGORITHM || typeof kid !== 'string') return undefined;
      const key = await this.verifier(kid);
      if (!key) return undefined;
      const { payload } = await jwtVerify(token, key, {
        algorithms: [TOKEN_ALGORITHM],
        issuer: service,
        audience: service,
        currentDate: new Date(this.now()),
        clockTolerance: 30,
      });
      if (payload.sub !== undefined && typeof payload.sub !== 'string') return undefined;
      const tid = typeof payload.tid === 'number' && Number.isSafeInteger(payload.tid) ? payload.tid : undefined;
      const uid = typeof payload.uid === 'number' && Number.isSafeInteger(payload.uid) ? payload.uid : undefined;
      return {
        token: { subject: payload.sub, subjectId: uid, access: parseAccess(payload.access), apiTokenId: tid },
        expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
      };
    } catch {
      return undefined;
    }
  }

  private signingKey(): Promise<{ kid: string; key: CryptoKey }> {
    this.signer ??= this.keys.current(generateSigningKey).then(
      async (k) => ({ kid: k.kid, key: await privateKey(k) }),
      (err: unknown) => {
        this.signer = undefined;
        throw err;
      },
    );
    return this.signer;
  }

  private verifier(kid: string): Promise<CryptoKey | undefined> {
    let found = this.verifiers.get(kid);
    if (!found) {
      found = this.keys.find(kid).then((k) => (k && k.algorithm === TOKEN_ALGORITHM ? publicKey(k) : undefined));
      // Unknown kids are not remembered, so a key another replica just stored is found on the next try.
      void found.then((k) => (k ? undefined : this.verifiers.delete(kid)), () => this.verifiers.delete(kid));
      this.verifiers.set(kid, found);
    }
    return found;
  }
}

/** A fresh ES256 key pair as a stored signing key (private JWK; the public half is derived from it). */
export async function generateSigningKey(): Promise<Omit<SigningKey, 'createdAt'>> {
  const { privateKey: key } = await generateKeyPair(TOKEN_ALGORITHM, { extractable: true });
  const jwk = await exportJWK(key);
  return { kid: randomUUID(), algorithm: TOKEN_ALGORITHM, privateJwk: JSON.stringify(jwk) };
}

async function privateKey(k: SigningKey): Promise<CryptoKey> {
  return (await importJWK(JSON.parse(k.privateJwk) as JWK, k.algorithm)) as CryptoKey;
}

async function publicKey(k: SigningKey): Promise<CryptoKey> {
  const { kty, crv, x, y } = JSON.parse(k.privateJwk) as JWK;
  return (await importJWK({ kty, crv, x, y }, k.algorithm)) as CryptoKey;
}

function parseAccess(value: unknown): TokenAccess[] {
  if (!Array.isArray(value)) return [];
  const out: TokenAccess[] = [];
  for (const a of value as Array<Record<string, unknown>>) {
    if (a && typeof a.type === 'string' && typeof a.name === 'string' && Array.isArray(a.actions)) {
      out.push({ type: a.type, name: a.name, actions: a.actions.filter((x): x is string => typeof x === 'string') });
    }
  }
  return out;
}
