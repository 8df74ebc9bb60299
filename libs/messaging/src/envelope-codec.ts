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
import type { KeyRing, TrustedKey } from './key-ring';
import { DURABLE_EVENT_TTL_MS } from './durable/event-stream';
import { payloadValidator } from './payload-validators';
import { ReplayGuard } from './replay-guard';
import {
  type SignatureVerifier,
  inlineSignatureVerifier,
  verifySignature,
} from './signature-verifier';
import { isTraceparent } from './trace-context';

const DOT = 0x2e;
const SIGNATURE_CHARS = 86; // 64 bytes in unpadded base64url
const MAX_KID_CHARS = 40;
/** 64 bytes in unpadded base64url: 85 free characters, then one whose low 4 bits are zero. */
const CANONICAL_SIGNATURE = /^[A-Za-z0-9_-]{85}[AQgw]$/;
const CLOCK_SKEW_MS = 30_000;
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

  seal(
    sender: ServiceName,
    kind: MessageKind,
    type: string,
    payload: unknown,
    options: SealOptions,
  ): Buffer {
    const key = this.keys.signerFor(sender);
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
        roles: [...options.actor.roles],
        sessionId: options.actor.sessionId,
      },
      payload,
    };
    // One buffer: the JSON is written after room for `<kid>.<signature>.` and signed in place.
    const json = JSON.stringify(envelope);
    const bodyStart = key.kid.length + SIGNATURE_CHARS + 2;
    const wire = Buffer.allocUnsafe(bodyStart + Buffer.byteLength(json, 'utf8'));
    wire.write(key.kid, 0, 'latin1');
    wire[key.kid.length] = DOT;
    wire.write(json, bodyStart, 'utf8');
    const signature = sign(null, wire.subarray(bodyStart), key.privateKey);
    wire.write(signature.toString('base64url'), key.kid.length + 1, 'latin1');
    wire[bodyStart - 1] = DOT;
    return wire;
  }

  /**
   * Verifies a message completely on this thread, or throws {@link MessageRefusedError} after
   * recording why.
   */
  open(wire: Uint8Array, options: OpenOptions): VerifiedMessage {
    try {
      const signed = this.readSigned(wire);
      if (!verifySignature(signed.body, signed.key.publicKey, signed.signature)) {
        throw new MessageRefusedError('bad_signature');
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
      if (!(await this.signatures.verify(signed.body, signed.key.publicKey, signed.signature))) {
        throw new MessageRefusedError('bad_signature');
      }
      return this.accept(signed, options);
    } catch (error) {
      throw this.refused(error, options);
    }
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

  /** Splits the wire form and finds the key; the signature is not checked yet. */
  private readSigned(bytes: Uint8Array): SignedBytes {
    const wire = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const firstDot = wire.indexOf(DOT);
    const secondDot = firstDot < 0 ? -1 : wire.indexOf(DOT, firstDot + 1);
    if (firstDot < 1 || firstDot > MAX_KID_CHARS || secondDot - firstDot - 1 !== SIGNATURE_CHARS) {
      throw new MessageRefusedError('malformed');
    }
    const key = this.keys.trustedKey(wire.toString('latin1', 0, firstDot));
    if (!key) throw new MessageRefusedError('unknown_key');
    // Only the canonical encoding is accepted: base64url decoders ignore the spare bits of the
    // last character, so without this check several texts would carry one signature.
    const signatureText = wire.toString('latin1', firstDot + 1, secondDot);
    if (!CANONICAL_SIGNATURE.test(signatureText)) throw new MessageRefusedError('bad_signature');
    const signature = Buffer.from(signatureText, 'base64url');
    if (signature.length !== 64) throw new MessageRefusedError('bad_signature');
    return { key, signature, body: wire.subarray(secondDot + 1) };
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

interface SignedBytes {
  readonly key: TrustedKey;
  readonly signature: Buffer;
  readonly body: Buffer;
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
