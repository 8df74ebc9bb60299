import { randomUUID, sign } from 'node:crypto';

import { SecurityEvents } from '@portcullis/audit';
import { contractOf, maySend } from '@portcullis/contracts';
import { type Actor, type ServiceName, isServiceName } from '@portcullis/core';

import {
  type Envelope,
  type MessageKind,
  MessageRefusedError,
  type RefusalReason,
  VerifiedMessage,
} from './envelope';
import {
  MAX_BATCH_SIZE,
  batchStatement,
  batchTree,
  leafHash,
  rootFromProof,
} from './envelope-batch';
import type { KeyRing, TrustedKey } from './key-ring';
import { DURABLE_EVENT_TTL_MS } from './durable/event-stream';
import { payloadValidator } from './payload-validators';
import { ReplayGuard } from './replay-guard';
import {
  type SignatureVerifier,
  inlineSignatureVerifier,
  verifySignature,
} from './signature-verifier';
import { SIGNATURE_CHARS, decodeSignature, encodeSignature } from './signature-text';
import { isTraceparent } from './trace-context';

const DOT = 0x2e;
const OPEN_BRACE = 0x7b;
const MAX_KID_CHARS = 40;
/** `<size>:<index>:<hex hashes>` of a batched message: at most 10 hashes of 64 digits. */
const BATCH_PROOF = /^([1-9][0-9]{0,3}):(0|[1-9][0-9]{0,3}):((?:[0-9a-f]{64}){0,10})$/;
const MAX_BATCH_PROOF_CHARS = 4 + 1 + 4 + 1 + 640;
/** Batch signatures remembered as verified, per codec: the newest are kept. */
const VERIFIED_BATCHES_KEPT = 1024;
const CLOCK_SKEW_MS = 30_000;
const ALREADY_VERIFIED: Promise<boolean> = Promise.resolve(true);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const CORRELATION = /^[A-Za-z0-9._:-]{1,128}$/;
const ROLE = /^[a-z]{1,32}$/;
const REQUEST_ID = /^[A-Za-z0-9-]{1,64}$/;

export interface SealOptions {
  /** The message id; a fresh one when absent. Outbox records pass their own id. */
  readonly id?: string;
  /** How long the message stays valid; the configured message lifetime when absent. */
  readonly ttlMs?: number;
  readonly rid?: string;
  readonly correlationId: string;
  readonly actor?: Actor;
  /** W3C trace context of the sending unit of work; receivers continue its trace. */
  readonly traceparent?: string;
}

/** One message of a batch sealed under one signature ({@link EnvelopeCodec.sealBatch}). */
export interface BatchMessage {
  readonly kind: MessageKind;
  readonly type: string;
  readonly payload: unknown;
  readonly options: SealOptions;
}

export interface OpenOptions {
  /** The subject the message arrived on; events and requests must name it as their type. */
  readonly subject?: string;
  /** The roles this receiver accepts the message in. */
  readonly kinds: readonly MessageKind[];
  /**
   * Durable events arrive again after a failed attempt, with the same id: their consumers'
   * inboxes, not this process's memory, keep them from being applied twice.
   */
  readonly redeliverable?: boolean;
}

/**
 * Seals payloads into signed envelopes and opens them again. The wire form is
 * `<kid>.<base64url Ed25519 signature>.<envelope JSON>`; the signature covers the JSON bytes
 * exactly as sent, and nothing in the JSON is parsed before the signature checks out.
 */
export class EnvelopeCodec {
  constructor(
    private readonly keys: KeyRing,
    private readonly ttlMs: number,
    private readonly events: SecurityEvents,
    private readonly replays = new ReplayGuard(),
    private readonly now: () => number = Date.now,
    private readonly signatures: SignatureVerifier = inlineSignatureVerifier,
  ) {}

  /** Batch signatures verified already, oldest first. Only valid ones are kept. */
  private readonly verifiedBatches = new Set<string>();
  private readonly pendingBatches = new Map<string, Promise<boolean>>();
  /** Settles when every check asked for so far by {@link openAsync} has. */
  private lastCheck: Promise<unknown> = ALREADY_VERIFIED;

  seal(
    sender: ServiceName,
    kind: MessageKind,
    type: string,
    payload: unknown,
    options: SealOptions,
  ): Buffer {
    const key = this.keys.signerFor(sender);
    const json = this.envelopeJson(sender, kind, type, payload, options);
    // One buffer: the JSON is written after room for `<kid>.<signature>.` and signed in place.
    const bodyStart = key.kid.length + SIGNATURE_CHARS + 2;
    const wire = Buffer.allocUnsafe(bodyStart + Buffer.byteLength(json, 'utf8'));
    wire.write(key.kid, 0, 'latin1');
    wire[key.kid.length] = DOT;
    wire.write(json, bodyStart, 'utf8');
    const signature = sign(null, wire.subarray(bodyStart), key.privateKey);
    encodeSignature(signature, wire, key.kid.length + 1);
    wire[bodyStart - 1] = DOT;
    return wire;
  }

  /**
   * Seals several messages with one signature: over the root of a Merkle tree of their
   * envelopes (see `envelope-batch.ts`). Each message carries the signature and its own
   * inclusion proof, so each is opened on its own like any other, and a receiver checks the
   * signature once for all the messages of a batch it gets. Up to {@link MAX_BATCH_SIZE}
   * messages share a signature; a single message is sealed as {@link seal} does.
   */
  sealBatch(sender: ServiceName, messages: readonly BatchMessage[]): Buffer[] {
    if (messages.length > MAX_BATCH_SIZE) {
      const wires: Buffer[] = [];
      for (let start = 0; start < messages.length; start += MAX_BATCH_SIZE) {
        wires.push(...this.sealBatch(sender, messages.slice(start, start + MAX_BATCH_SIZE)));
      }
      return wires;
    }
    if (messages.length < 2) {
      return messages.map((m) => this.seal(sender, m.kind, m.type, m.payload, m.options));
    }
    const key = this.keys.signerFor(sender);
    const bodies = messages.map((m) =>
      Buffer.from(this.envelopeJson(sender, m.kind, m.type, m.payload, m.options), 'utf8'),
    );
    const tree = batchTree(bodies.map(leafHash));
    const signature = sign(null, batchStatement(bodies.length, tree.root), key.privateKey);
    return bodies.map((body, index) => {
      const hashes = tree.proofs[index].map((hash) => hash.toString('hex')).join('');
      const proof = `${bodies.length}:${index}:${hashes}`;
      const proofStart = key.kid.length + SIGNATURE_CHARS + 2;
      const bodyStart = proofStart + proof.length + 1;
      const wire = Buffer.allocUnsafe(bodyStart + body.length);
      wire.write(key.kid, 0, 'latin1');
      wire[key.kid.length] = DOT;
      encodeSignature(signature, wire, key.kid.length + 1);
      wire[proofStart - 1] = DOT;
      wire.write(proof, proofStart, 'latin1');
      wire[bodyStart - 1] = DOT;
      body.copy(wire, bodyStart);
      return wire;
    });
  }

  private envelopeJson(
    sender: ServiceName,
    kind: MessageKind,
    type: string,
    payload: unknown,
    options: SealOptions,
  ): string {
    const iat = this.now();
    const envelope: Envelope = {
      v: 1,
      id: options.id ?? randomUUID(),
      kind,
      type,
      sender,
      iat,
      exp: iat + (options.ttlMs ?? this.ttlMs),
      corr: options.correlationId,
      rid: options.rid,
      traceparent: options.traceparent,
      actor: options.actor && {
        id: options.actor.id,
        roles: options.actor.roles,
        sessionId: options.actor.sessionId,
      },
      payload,
    };
    return JSON.stringify(envelope);
  }

  /**
   * Verifies a message completely on this thread, or throws {@link MessageRefusedError} after
   * recording why.
   */
  open(wire: Uint8Array, options: OpenOptions): VerifiedMessage {
    try {
      const signed = this.readSigned(wire);
      if (!this.batchVerified(signed)) {
        const valid = verifySignature(signed.covered, signed.key.publicKey, signed.signature);
        if (!valid) throw new MessageRefusedError('bad_signature');
        this.rememberBatch(signed);
      }
      return this.accept(signed, options);
    } catch (error) {
      throw this.refused(error, options);
    }
  }

  /**
   * {@link open} with the signature checked by the codec's {@link SignatureVerifier} (worker
   * threads when configured): the same checks in the same order, the same refusals.
   */
  async openAsync(wire: Uint8Array, options: OpenOptions): Promise<VerifiedMessage> {
    try {
      // A private copy: the bytes parsed are the bytes verified, whatever the caller's buffer
      // holds by the time the answer arrives.
      const signed = this.readSigned(Buffer.from(wire));
      const check = this.batchVerified(signed) ? ALREADY_VERIFIED : this.verifyOnce(signed);
      // Answers in the order the checks were asked: a message of a batch verified already
      // does not overtake one that arrived before it and is still being checked.
      const previous = this.lastCheck;
      const inOrder = previous.then(() => check);
      this.lastCheck = inOrder.then(
        () => undefined,
        () => undefined,
      );
      if (!(await inOrder)) throw new MessageRefusedError('bad_signature');
      return this.accept(signed, options);
    } catch (error) {
      throw this.refused(error, options);
    }
  }

  /** Whether the message's batch signature was verified already (never for single messages). */
  private batchVerified(signed: SignedBytes): boolean {
    return signed.batch !== undefined && this.verifiedBatches.has(signed.batch);
  }

  private rememberBatch(signed: SignedBytes): void {
    if (signed.batch === undefined) return;
    this.verifiedBatches.add(signed.batch);
    if (this.verifiedBatches.size > VERIFIED_BATCHES_KEPT) {
      this.verifiedBatches.delete(this.verifiedBatches.values().next().value as string);
    }
  }

  /**
   * Verifies through the codec's verifier. Messages of one batch that arrive together share
   * one check: the first asks, the others wait for its answer. Should that check fail to run,
   * each of them is checked again on this thread, so one failure does not refuse a batch.
   */
  private verifyOnce(signed: SignedBytes): Promise<boolean> {
    const check = () =>
      this.signatures.verify(signed.covered, signed.key.publicKey, signed.signature);
    if (signed.batch === undefined) return check();
    const batch = signed.batch;
    let pending = this.pendingBatches.get(batch);
    if (!pending) {
      pending = check().then(
        (valid) => {
          this.pendingBatches.delete(batch);
          if (valid) this.rememberBatch(signed);
          return valid;
        },
        (error: unknown) => {
          this.pendingBatches.delete(batch);
          throw error;
        },
      );
      this.pendingBatches.set(batch, pending);
    }
    return pending.catch(() => {
      const valid = verifySignature(signed.covered, signed.key.publicKey, signed.signature);
      if (valid) this.rememberBatch(signed);
      return valid;
    });
  }

  private refused(error: unknown, options: OpenOptions): MessageRefusedError {
    const refusal =
      error instanceof MessageRefusedError ? error : new MessageRefusedError('malformed');
    this.events.record({
      type: 'message.refused',
      outcome: 'denied',
      reason: refusal.reason,
      details: { messageType: refusal.type, sender: refusal.sender, subject: options.subject },
    });
    return refusal;
  }

  /**
   * Splits the wire form and finds the key; the signature is not checked yet. For a batched
   * message, the proof leads from the envelope's bytes to the root whose statement was signed.
   */
  private readSigned(bytes: Uint8Array): SignedBytes {
    const wire = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const firstDot = wire.indexOf(DOT);
    const secondDot = firstDot < 0 ? -1 : wire.indexOf(DOT, firstDot + 1);
    if (firstDot < 1 || firstDot > MAX_KID_CHARS || secondDot - firstDot - 1 !== SIGNATURE_CHARS) {
      throw new MessageRefusedError('malformed');
    }
    const proof = wire[secondDot + 1] === OPEN_BRACE ? undefined : readProof(wire, secondDot + 1);
    const kid = wire.toString('latin1', 0, firstDot);
    const key = this.keys.trustedKey(kid);
    if (!key) throw new MessageRefusedError('unknown_key');
    // Only the canonical encoding decodes: base64url decoders commonly ignore the spare bits of
    // the last character, which would let several texts carry one signature.
    const signature = decodeSignature(wire, firstDot + 1);
    if (!signature) throw new MessageRefusedError('bad_signature');
    if (!proof) {
      const body = wire.subarray(secondDot + 1);
      return { key, signature, body, covered: body };
    }

    const body = wire.subarray(proof.end + 1);
    const root = rootFromProof(leafHash(body), proof.index, proof.size, proof.siblings);
    if (!root) throw new MessageRefusedError('bad_signature');
    const covered = batchStatement(proof.size, root);
    const batch = `${kid}.${signature.toString('latin1')}${covered.toString('latin1')}`;
    return { key, signature, body, covered, batch };
  }

  /** Everything after the signature: the envelope, its sender, type, age, id and payload. */
  private accept({ key, body }: SignedBytes, options: OpenOptions): VerifiedMessage {
    const envelope = parseEnvelope(body);
    const refuse = (reason: RefusalReason): never => {
      throw new MessageRefusedError(reason, envelope.type, envelope.sender);
    };
    if (envelope.sender !== key.service) refuse('sender_mismatch');
    if (!options.kinds.includes(envelope.kind)) refuse('type_not_allowed');
    if (!maySend(envelope.type, envelope.sender, envelope.kind)) refuse('type_not_allowed');
    if (envelope.kind !== 'reply' && options.subject !== envelope.type) refuse('subject_mismatch');
    const now = this.now();
    if (envelope.exp <= now) refuse('expired');
    const maxLifetime = envelope.kind === 'event' ? DURABLE_EVENT_TTL_MS : this.ttlMs;
    if (
      envelope.iat > now + CLOCK_SKEW_MS ||
      envelope.exp - envelope.iat > maxLifetime + CLOCK_SKEW_MS
    ) {
      refuse('not_yet_valid');
    }
    if (!options.redeliverable && !this.replays.firstSighting(envelope.id, envelope.exp)) {
      refuse('replayed');
    }

    const payload = validatePayload(envelope);
    if (payload === undefined) refuse('invalid_payload');
    return new VerifiedMessage(
      envelope.id,
      envelope.kind,
      envelope.type,
      envelope.sender,
      envelope.iat,
      envelope.corr,
      envelope.actor,
      payload,
      envelope.rid,
      envelope.traceparent,
    );
  }
}

interface BatchProof {
  readonly size: number;
  readonly index: number;
  readonly siblings: Buffer[];
  /** Where the proof ends: the dot before the envelope. */
  readonly end: number;
}

/** The `<size>:<index>:<hex hashes>` of a batched message at `start`, or `malformed`. */
function readProof(wire: Buffer, start: number): BatchProof {
  const end = wire.indexOf(DOT, start);
  if (end < 0 || end - start > MAX_BATCH_PROOF_CHARS) throw new MessageRefusedError('malformed');
  const proof = BATCH_PROOF.exec(wire.toString('latin1', start, end));
  if (!proof) throw new MessageRefusedError('malformed');
  const size = Number(proof[1]);
  const index = Number(proof[2]);
  if (size < 2 || size > MAX_BATCH_SIZE || index >= size) {
    throw new MessageRefusedError('malformed');
  }
  const hashes = Buffer.from(proof[3], 'hex');
  const siblings: Buffer[] = [];
  for (let at = 0; at < hashes.length; at += 32) siblings.push(hashes.subarray(at, at + 32));
  return { size, index, siblings, end };
}

interface SignedBytes {
  readonly key: TrustedKey;
  readonly signature: Buffer;
  /** The envelope's JSON. */
  readonly body: Buffer;
  /** What the signature covers: the body itself, or a batch's statement. */
  readonly covered: Buffer;
  /** For a batched message: its key, signature and statement, as one lookup key. */
  readonly batch?: string;
}

function parseEnvelope(body: Buffer): Envelope {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new MessageRefusedError('malformed');
  }
  if (!isEnvelope(value)) throw new MessageRefusedError('malformed');
  return value;
}

function isEnvelope(value: unknown): value is Envelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const e = value as Record<string, unknown>;
  return (
    e.v === 1 &&
    typeof e.id === 'string' &&
    UUID.test(e.id) &&
    (e.kind === 'event' || e.kind === 'request' || e.kind === 'reply') &&
    typeof e.type === 'string' &&
    isServiceName(e.sender) &&
    Number.isSafeInteger(e.iat) &&
    Number.isSafeInteger(e.exp) &&
    typeof e.corr === 'string' &&
    CORRELATION.test(e.corr) &&
    (e.rid === undefined || (typeof e.rid === 'string' && REQUEST_ID.test(e.rid))) &&
    (e.traceparent === undefined || isTraceparent(e.traceparent)) &&
    (e.actor === undefined || isActor(e.actor)) &&
    'payload' in e
  );
}

function isActor(value: unknown): value is Actor {
  if (typeof value !== 'object' || value === null) return false;
  const a = value as Record<string, unknown>;
  return (
    typeof a.id === 'string' &&
    UUID.test(a.id) &&
    Array.isArray(a.roles) &&
    a.roles.length <= 8 &&
    a.roles.every((role) => typeof role === 'string' && ROLE.test(role)) &&
    (a.sessionId === undefined || (typeof a.sessionId === 'string' && UUID.test(a.sessionId)))
  );
}

/**
 * Validates the payload against its contract (an event's earlier form too, when its contract
 * still accepts one); a reply's `response` against the reply class.
 */
function validatePayload(envelope: Envelope): unknown {
  const contract = contractOf(envelope.type);
  if (!contract) return undefined;
  if (envelope.kind !== 'reply') {
    const payload = validateAs(contract.payload, envelope.payload);
    if (payload !== undefined || contract.kind !== 'event' || !contract.legacyPayload) {
      return payload;
    }
    return validateAs(contract.legacyPayload, envelope.payload);
  }
  if (contract.kind !== 'request') return undefined;
  const reply = envelope.payload as { response?: unknown; err?: unknown; isDisposed?: unknown };
  if (typeof reply !== 'object' || reply === null) return undefined;
  if (reply.err !== undefined && reply.err !== null) return reply;
  if (reply.response === undefined) return reply;
  const response = validateAs(contract.reply, reply.response);
  return response === undefined ? undefined : { ...reply, response };
}

function validateAs(type: new () => object, value: unknown): object | undefined {
  return payloadValidator(type)(value);
}
