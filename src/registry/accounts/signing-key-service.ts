/**
 * The keys that sign registry bearer tokens. The newest key signs; every stored key verifies (by `kid`),
 * so replicas that raced to create the first key still accept each other's tokens. Key generation (e.g.
 * with `jose`) is the caller's: this service only stores and picks.
 */
import type { SigningKeyRecord, SigningKeyStore } from '../../db/signing-key-store.js';

export type SigningKey = SigningKeyRecord;

export class SigningKeyService {
  constructor(private readonly store: SigningKeyStore) {}

  /**
   * The key to sign with: the newest stored one, or, when there is none, the one `generate` makes, stored
   * first. Concurrent first starts may each store a key; all of them then agree on the newest.
   */
  async current(generate: () => Promise<Omit<SigningKey, 'createdAt'>>): Promise<SigningKey> {
    const existing = await this.store.latest();
    if (existing) return existing;
    const key = await generate();
    await this.store.insert({ ...key, createdAt: Date.now() });
    return (await this.store.latest())!;
  }

  /** The key with this `kid`, to verify a token, or undefined. */
  find(kid: string): Promise<SigningKey | undefined> {
    return this.store.find(kid);
  }

  /** Every key, newest first (e.g. to publish the public halves as a JWKS). */
  list(): Promise<SigningKey[]> {
    return this.store.list();
  }

  /** Adds a key (rotation): it becomes the one that signs; older ones keep verifying. */
  async add(key: Omit<SigningKey, 'createdAt'>): Promise<void> {
    await this.store.insert({ ...key, createdAt: Date.now() });
  }
}
