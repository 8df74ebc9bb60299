import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';

import { type SignatureVerifier, verifySignature } from './signature-verifier';

/**
 * The worker: a map of public keys by number, and one loop over each batch. Index entries are
 * [key, body start, body end, signature start, signature end] into the batch's bytes. Result
 * codes: 1 valid, 0 invalid, 2 the check threw, 3 the key is unknown here.
 */
const WORKER_SOURCE = `'use strict';
const { parentPort } = require('node:worker_threads');
const { verify } = require('node:crypto');
const keys = new Map();
parentPort.on('message', ({ batch, added, dropped, bytes, index }) => {
  for (const id of dropped) keys.delete(id);
  for (const [id, key] of added) keys.set(id, key);
  const results = new Uint8Array(index.length / 5);
  for (let i = 0; i < results.length; i += 1) {
    const at = i * 5;
    const key = keys.get(index[at]);
    if (key === undefined) { results[i] = 3; continue; }
    try {
      const body = bytes.subarray(index[at + 1], index[at + 2]);
      const signature = bytes.subarray(index[at + 3], index[at + 4]);
      results[i] = verify(null, body, key, signature) ? 1 : 0;
    } catch {
      results[i] = 2;
    }
  }
  parentPort.postMessage({ batch, results }, [results.buffer]);
});
`;

const VALID = 1;
const INVALID = 0;
const THREW = 2;
const FIELDS = 5;

interface Check {
  readonly body: Uint8Array;
  readonly publicKey: KeyObject;
  readonly signature: Uint8Array;
  readonly resolve: (valid: boolean) => void;
  readonly reject: (error: Error) => void;
}

interface Batch {
  readonly id: number;
  readonly checks: readonly Check[];
  results?: Uint8Array;
}

interface Slot {
  worker?: Worker;
  /** Key numbers the worker holds, oldest first. */
  readonly known: Map<number, true>;
  readonly inFlight: Map<number, Batch>;
  load: number;
  crashes: number;
  notBefore: number;
}

export interface SignatureVerifierPoolOptions {
  /** Most signatures sent to a worker in one message. */
  readonly maxBatch?: number;
  /** Most public keys one worker keeps; older ones are dropped (and sent again when used). */
  readonly maxKeys?: number;
}

/**
 * Ed25519 verification on worker threads, so that it runs beside the event loop rather than
 * on it. Checks asked for in one turn of the event loop go out together, split over the
 * workers in batches, and one message carries each batch and its answers, so the cost of
 * passing messages is shared by the batch. Answers are given in the order the checks were
 * asked for, whatever worker finishes first.
 *
 * A worker that stops (a crash, or its thread killed) does not change any answer: the checks
 * it held are done again on the calling thread, since refusing them would turn a fault of this
 * process into a forged-message alarm and drop durable events that are valid. The worker is
 * started again when work next arrives, after a pause that grows with repeated failures.
 * After {@link close}, and with a size of 0, every check runs on the calling thread.
 */
export class SignatureVerifierPool implements SignatureVerifier, OnApplicationShutdown {
  private readonly logger = new Logger(SignatureVerifierPool.name);
  private readonly slots: Slot[];
  private readonly maxBatch: number;
  private readonly maxKeys: number;
  private readonly keyNumbers = new WeakMap<KeyObject, number>();
  private nextKeyNumber = 1;
  private nextBatchId = 1;
  private queue: Check[] = [];
  private flushScheduled = false;
  /** Dispatched batches in the order they were asked for; answered from the front. */
  private readonly order: Batch[] = [];
  private closed = false;

  constructor(
    readonly size: number,
    options: SignatureVerifierPoolOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 64;
    this.maxKeys = options.maxKeys ?? 32;
    this.slots = Array.from({ length: size }, () => ({
      known: new Map<number, true>(),
      inFlight: new Map<number, Batch>(),
      load: 0,
      crashes: 0,
      notBefore: 0,
    }));
  }

  verify(body: Uint8Array, publicKey: KeyObject, signature: Uint8Array): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (this.closed || this.size === 0) {
        resolve(verifySignature(body, publicKey, signature));
        return;
      }
      this.queue.push({ body, publicKey, signature, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Workers currently running (for tests and metrics). */
  runningWorkers(): number {
    return this.slots.filter((slot) => slot.worker).length;
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  /** Stops the workers. Checks still open are answered on the calling thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopping: Array<Promise<number>> = [];
    for (const slot of this.slots) {
      const worker = slot.worker;
      this.retire(slot);
      if (worker) stopping.push(worker.terminate());
    }
    this.answerInline(this.queue.splice(0));
    this.settle();
    await Promise.all(stopping);
  }

  private flush(): void {
    this.flushScheduled = false;
    const checks = this.queue.splice(0);
    if (checks.length === 0 || this.closed) return;
    // Enough batches to give every worker a share, none larger than maxBatch.
    const batches = Math.min(
      checks.length,
      Math.max(Math.ceil(checks.length / this.maxBatch), this.slots.length),
    );
    const perBatch = Math.ceil(checks.length / batches);
    for (let start = 0; start < checks.length; start += perBatch) {
      this.dispatch(checks.slice(start, start + perBatch));
    }
  }

  private dispatch(checks: Check[]): void {
    const slot = this.availableSlot();
    const worker = slot && this.workerOf(slot);
    if (!slot || !worker) {
      this.answerInline(checks);
      this.settle();
      return;
    }

    const used = new Set<number>();
    const added: Array<[number, KeyObject]> = [];
    let total = 0;
    for (const check of checks) {
      const number = this.keyNumber(check.publicKey);
      used.add(number);
      if (!slot.known.has(number)) {
        slot.known.set(number, true);
        added.push([number, check.publicKey]);
      }
      total += check.body.byteLength + check.signature.byteLength;
    }
    const dropped: number[] = [];
    for (const number of slot.known.keys()) {
      if (slot.known.size <= this.maxKeys) break;
      if (used.has(number)) continue;
      slot.known.delete(number);
      dropped.push(number);
    }

    const bytes = new Uint8Array(total);
    const index = new Uint32Array(checks.length * FIELDS);
    let offset = 0;
    checks.forEach((check, i) => {
      const at = i * FIELDS;
      index[at] = this.keyNumber(check.publicKey);
      index[at + 1] = offset;
      bytes.set(check.body, offset);
      offset += check.body.byteLength;
      index[at + 2] = offset;
      index[at + 3] = offset;
      bytes.set(check.signature, offset);
      offset += check.signature.byteLength;
      index[at + 4] = offset;
    });

    const batch: Batch = { id: this.nextBatchId++, checks };
    slot.inFlight.set(batch.id, batch);
    slot.load += checks.length;
    this.order.push(batch);
    worker.ref();
    worker.postMessage({ batch: batch.id, added, dropped, bytes, index }, [
      bytes.buffer,
      index.buffer,
    ]);
  }

  /** The least loaded slot that may run a worker now. */
  private availableSlot(): Slot | undefined {
    const now = Date.now();
    let best: Slot | undefined;
    for (const slot of this.slots) {
      if (!slot.worker && slot.notBefore > now) continue;
      if (!best || slot.load < best.load) best = slot;
    }
    return best;
  }

  private workerOf(slot: Slot): Worker | undefined {
    if (slot.worker) return slot.worker;
    let worker: Worker;
    try {
      worker = new Worker(WORKER_SOURCE, { eval: true });
    } catch (error) {
      this.failed(slot, error);
      return undefined;
    }
    slot.worker = worker;
    worker.on('message', (answer: { batch: number; results: Uint8Array }) =>
      this.answered(slot, answer.batch, answer.results),
    );
    worker.on('error', (error) => {
      if (slot.worker === worker) this.failed(slot, error);
    });
    worker.on('exit', (code) => {
      if (slot.worker === worker) this.failed(slot, new Error(`exited with code ${code}`));
    });
    worker.unref();
    return worker;
  }

  private answered(slot: Slot, batchId: number, results: Uint8Array): void {
    const batch = slot.inFlight.get(batchId);
    if (!batch) return;
    slot.inFlight.delete(batchId);
    slot.load -= batch.checks.length;
    slot.crashes = 0;
    if (slot.inFlight.size === 0) slot.worker?.unref();
    batch.results = results;
    this.settle();
  }

  /** A worker stopped or could not start: its checks are done here, and it rests a while. */
  private failed(slot: Slot, error: unknown): void {
    const worker = slot.worker;
    const open = slot.inFlight.size;
    this.retire(slot);
    if (this.closed) return;
    slot.crashes += 1;
    slot.notBefore = Date.now() + Math.min(100 * 2 ** (slot.crashes - 1), 30_000);
    void worker?.terminate();
    this.logger.warn({
      msg: 'signature verification worker stopped; its checks ran on the main thread',
      openBatches: open,
      error: error instanceof Error ? error.message : String(error),
    });
    this.settle();
  }

  /** Forgets a slot's worker; the checks it held are answered on this thread. */
  private retire(slot: Slot): void {
    slot.worker = undefined;
    slot.known.clear();
    for (const batch of slot.inFlight.values()) batch.results = inlineResults(batch.checks);
    slot.inFlight.clear();
    slot.load = 0;
  }

  private answerInline(checks: Check[]): void {
    if (checks.length === 0) return;
    this.order.push({ id: this.nextBatchId++, checks, results: inlineResults(checks) });
  }

  /** Answers finished batches from the front, so that answers keep the order of the asking. */
  private settle(): void {
    while (this.order.length > 0 && this.order[0].results) {
      const batch = this.order.shift()!;
      const results = batch.results!;
      batch.checks.forEach((check, i) => {
        const code = results[i];
        if (code === VALID || code === INVALID) check.resolve(code === VALID);
        else if (code === THREW) check.reject(new Error('signature check failed'));
        else settleInline(check);
      });
    }
  }

  private keyNumber(key: KeyObject): number {
    let number = this.keyNumbers.get(key);
    if (number === undefined) {
      number = this.nextKeyNumber++;
      this.keyNumbers.set(key, number);
    }
    return number;
  }
}

function inlineResults(checks: readonly Check[]): Uint8Array {
  const results = new Uint8Array(checks.length);
  checks.forEach((check, i) => {
    try {
      results[i] = verifySignature(check.body, check.publicKey, check.signature) ? VALID : INVALID;
    } catch {
      results[i] = THREW;
    }
  });
  return results;
}

function settleInline(check: Check): void {
  try {
    check.resolve(verifySignature(check.body, check.publicKey, check.signature));
  } catch (error) {
    check.reject(error instanceof Error ? error : new Error('signature check failed'));
  }
}
