/**
 * Digests computed on a worker thread, so that the thread serving requests does not spend its time on
 * them. Bytes are shared, not copied: `update` takes views over a SharedArrayBuffer, and resolves once
 * the worker has hashed them (the caller may reuse the memory then). One thread serves every hash in
 * flight, in the order of their updates; it starts with the first hash and keeps the process alive only
 * while a reply is awaited. If it dies, every hash in flight fails and the next one starts a new thread.
 */
import { Worker } from 'node:worker_threads';
import { digestAlgorithm, type Digest, type DigestAlgorithm } from '../oci/digest.js';
import type { ChunkHasher } from './verified-write.js';

type Reply = { id: number; digest?: string; error?: string };

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  try {
    if (m.op === 'update') {
      let h = hashes.get(m.id);
      if (!h) hashes.set(m.id, (h = createHash(m.algorithm)));
      h.update(m.bytes);
      parentPort.postMessage({ id: m.id });
    } else if (m.op === 'digest') {
      const h = hashes.get(m.id) ?? createHash(m.algorithm);
      hashes.delete(m.id);
      parentPort.postMessage({ id: m.id, digest: h.digest('hex') });
    } else if (m.op === 'drop') {
      hashes.delete(m.id);
    }
  } catch (err) {
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, error: String(err && err.message || err) });
  }
});
`;

interface Waiter {
  resolve(reply: Reply): void;
  reject(err: Error): void;
}

export class HashWorker {
  private worker: Worker | undefined;
  private nextId = 1;
  /** Per hash in flight, the replies it waits for, in order. */
  private readonly waiting = new Map<number, Waiter[]>();
  private awaited = 0;

  /** A new hash with the algorithm of `forDigest`. */
  hasher(forDigest: Digest): ChunkHasher {
    return new WorkerHash(this, this.nextId++, digestAlgorithm(forDigest));
  }

  /** Sends one message for hash `id`; resolves with the worker's reply to it (`drop` expects none). */
  send(message: { op: 'update' | 'digest' | 'drop'; id: number; algorithm: DigestAlgorithm; bytes?: Uint8Array }): Promise<Reply> {
    const worker = this.start();
    if (message.op === 'drop') {
      // Updates sent before still get their replies (the worker answers in order).
      worker.postMessage(message);
      return Promise.resolve({ id: message.id });
    }
    return new Promise<Reply>((resolve, reject) => {
      let queue = this.waiting.get(message.id);
      if (!queue) this.waiting.set(message.id, (queue = []));
      queue.push({ resolve, reject });
      if (this.awaited++ === 0) worker.ref();
      worker.postMessage(message);
    });
  }

  /** Stops the thread (hashes in flight fail). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.failAll(new Error('hash worker closed'));
    await worker?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // No inherited Node options: the source is CommonJS whatever the process was started with.
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
    worker.on('message', (reply: Reply) => {
      const queue = this.waiting.get(reply.id);
      const waiter = queue?.shift();
      if (queue && !queue.length) this.waiting.delete(reply.id);
      if (waiter && --this.awaited === 0) worker.unref();
      waiter?.resolve(reply);
    });
    const gone = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.failAll(err);
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`hash worker exited with code ${code}`)));
    worker.unref(); // after the listeners (adding a 'message' listener refs it); `send` refs it while awaited
    this.worker = worker;
    return worker;
  }

  private failAll(err: Error): void {
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    this.awaited = 0;
    for (const queue of waiting) for (const w of queue) w.reject(err);
  }
}

class WorkerHash implements ChunkHasher {
  private done = false;

  constructor(
    private readonly pool: HashWorker,
    private readonly id: number,
    private readonly algorithm: DigestAlgorithm,
  ) {}

  /** `chunk` must be a view over a SharedArrayBuffer (it is hashed where it lies, not copied). */
  async update(chunk: Uint8Array): Promise<void> {
    if (this.done) throw new Error('hash update after digest');
    if (!(chunk.buffer instanceof SharedArrayBuffer)) throw new Error('worker hashes take views over a SharedArrayBuffer');
    const reply = await this.pool.send({ op: 'update', id: this.id, algorithm: this.algorithm, bytes: chunk });
    if (reply.error !== undefined) throw new Error(`hashing failed: ${reply.error}`);
  }

  async digest(): Promise<Digest> {
    if (this.done) throw new Error('digest taken twice');
    this.done = true;
    const reply = await this.pool.send({ op: 'digest', id: this.id, algorithm: this.algorithm });
    if (reply.error !== undefined || reply.digest === undefined) throw new Error(`hashing failed: ${reply.error ?? 'no digest'}`);
    return `${this.algorithm}:${reply.digest}` as Digest;
  }

  discard(): void {
    if (this.done) return;
    this.done = true;
    void this.pool.send({ op: 'drop', id: this.id, algorithm: this.algorithm });
  }
}
