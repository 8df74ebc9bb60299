import { type KeyObject, randomUUID, sign } from 'node:crypto';

import { type AuditRecord, type SecurityEvent, SecurityEvents } from '@portcullis/audit';
import { SERVICE_NAMES, type ServiceName } from '@portcullis/core';
import { SecretFiles, ensureDevelopmentSecrets } from '@portcullis/crypto';
import {
  EnvelopeCodec,
  KeyRing,
  MessageRefusedError,
  type OpenOptions,
  type RefusalReason,
  ReplayGuard,
  type SignatureVerifier,
} from '@portcullis/messaging';

import { createTempDir, removeTempDir } from './temp-dir';

/** The fixed instant every envelope spec starts at. */
export const T0 = Date.UTC(2030, 0, 1);
export const TTL_MS = 60_000;

/** A valid `orders.created` payload, the one most envelope specs seal. */
export const ORDER = {
  orderId: randomUUID(),
  customerId: randomUUID(),
  totalCents: 2500,
  currency: 'EUR',
};
/** How a receiver opens an `orders.created` event. */
export const AS_EVENT: OpenOptions = { subject: 'orders.created', kinds: ['event'] };

/**
 * Security events kept in memory, so a spec can read what was recorded outside a transaction,
 * and which drafted records were announced once written.
 */
export class RecordingSecurityEvents extends SecurityEvents {
  readonly recorded: SecurityEvent[] = [];
  readonly announced: AuditRecord[] = [];

  override record(event: SecurityEvent): void {
    this.recorded.push(event);
  }

  override announce(records: readonly AuditRecord[]): void {
    this.announced.push(...records);
  }

  /** The reasons of the events recorded, in order ('' for none). */
  get reasons(): string[] {
    return this.recorded.map((event) => event.reason ?? '');
  }
}

export interface CodecUnderTest {
  readonly codec: EnvelopeCodec;
  readonly events: RecordingSecurityEvents;
  /** The codec's clock; move `now` to travel in time. */
  readonly clock: { now: number };
}

/**
 * Real development secrets for every service in a temp dir, the key ring loaded from them,
 * and codecs over that ring with a fixed clock and recorded security events.
 */
export class EnvelopeFixture {
  private constructor(
    private readonly directory: string,
    readonly ring: KeyRing,
  ) {}

  static create(): EnvelopeFixture {
    const directory = createTempDir('envelopes');
    ensureDevelopmentSecrets(directory, SERVICE_NAMES);
    return new EnvelopeFixture(directory, KeyRing.load(new SecretFiles(directory), SERVICE_NAMES));
  }

  remove(): void {
    removeTempDir(this.directory);
  }

  /** A codec over the ring; `signatures` checks signatures (on this thread when absent). */
  codec(ttlMs = TTL_MS, signatures?: SignatureVerifier): CodecUnderTest {
    const clock = { now: T0 };
    const events = new RecordingSecurityEvents();
    const codec = new EnvelopeCodec(
      this.ring,
      ttlMs,
      events,
      new ReplayGuard(),
      () => clock.now,
      signatures,
    );
    return { codec, events, clock };
  }

  kidOf(service: ServiceName): string {
    return this.ring.signerFor(service).kid;
  }

  /** Signs any JSON exactly as the codec would: `<kid>.<signature>.<json>`. */
  wireOf(envelope: unknown, kid: string, privateKey?: KeyObject): Buffer {
    const key = privateKey ?? this.ring.signerFor('orders').privateKey;
    const body = Buffer.from(JSON.stringify(envelope), 'utf8');
    const signature = sign(null, body, key).toString('base64url');
    return Buffer.concat([Buffer.from(`${kid}.${signature}.`, 'latin1'), body]);
  }
}

/** A well-formed `orders.created` envelope body, with any fields replaced. */
export function orderCreatedEnvelope(payload: unknown, changes: object = {}): object {
  return {
    v: 1,
    id: randomUUID(),
    kind: 'event',
    type: 'orders.created',
    sender: 'orders',
    iat: T0,
    exp: T0 + TTL_MS,
    corr: 'corr-1',
    payload,
    ...changes,
  };
}

/** Why the codec refused a message; fails when it accepted it. */
export function refusalOf(
  codec: EnvelopeCodec,
  wire: Uint8Array,
  options: OpenOptions,
): RefusalReason {
  try {
    codec.open(wire, options);
  } catch (error) {
    if (error instanceof MessageRefusedError) return error.reason;
    throw error;
  }
  throw new Error('the message was accepted');
}
