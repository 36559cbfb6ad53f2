/**
 * A pass-through that checks a blob against its digest and expected size, and holds back the last
 * chunk until the check passes: a reader of a wrong or truncated upstream body sees an error and never
 * the complete content, so it can never mistake corrupt bytes for a finished transfer.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { Digester, digestAlgorithm, type Digest } from '../oci/digest.js';
import { UpstreamProtocolError } from './errors.js';

export class VerifyingStream extends Transform {
  private readonly digester: Digester;
  private held: Buffer | undefined;
  private received = 0;

  constructor(
    private readonly expected: Digest,
    private readonly expectedSize: number | undefined,
  ) {
    super();
    this.digester = new Digester(digestAlgorithm(expected));
  }

  /** Bytes received from the upstream so far. */
  get bytesReceived(): number {
    return this.received;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    if (this.expectedSize !== undefined && this.received > this.expectedSize) {
      callback(new UpstreamProtocolError(`blob ${this.expected}: upstream sent more than the ${this.expectedSize} bytes it announced`));
      return;
    }
    this.digester.update(chunk);
    const previous = this.held;
    this.held = chunk;
    callback(null, previous);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedSize !== undefined && this.received !== this.expectedSize) {
      callback(new UpstreamProtocolError(`blob ${this.expected}: upstream sent ${this.received} of ${this.expectedSize} bytes`));
      return;
    }
    const actual = this.digester.digest();
    if (actual !== this.expected) {
      callback(new UpstreamProtocolError(`blob digest mismatch: requested ${this.expected}, upstream content hashes to ${actual}`));
      return;
    }
    callback(null, this.held);
  }
}
