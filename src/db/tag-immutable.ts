/**
 * Thrown inside a tag-changing transaction when the change would move, end, expire or remove an
 * immutable live tag: the transaction rolls back, so nothing of the write is kept. The registry turns
 * it into its refusal (registry/tag-immutability.ts).
 */
export class TagImmutable extends Error {
  constructor(readonly tag: string) {
    super(`tag ${tag} is immutable`);
    this.name = 'TagImmutable';
  }
}
