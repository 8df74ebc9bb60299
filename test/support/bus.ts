import { type KeyObject, randomUUID } from 'node:crypto';

import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, connect, headers } from '@nats-io/transport-node';

import type { SecurityEvent, SecurityEvents } from '@portcullis/audit';
import { EVENTS_STREAM } from '@portcullis/contracts';
import type { Actor, ServiceName } from '@portcullis/core';
import { SecretFiles } from '@portcullis/crypto';
import { EnvelopeCodec, FRAME_HEADER, KeyRing, readFrame } from '@portcullis/messaging';

import type { Deployment } from './deployment';

/**
 * Speaks on a deployment's NATS bus as one of its services would: messages sealed with that
 * service's own key from the deployment's SECRETS_DIR, so receivers verify them like any other.
 * It stands for a service whose code trusts a payload it should not, or that was compromised.
 */
export class ServiceImpersonator {
  private constructor(
    private readonly nats: NatsConnection,
    private readonly codec: EnvelopeCodec,
  ) {}

  /**
   * `signingKeys` replaces the services' keys from SECRETS_DIR: the impersonator then signs
   * only as those services, with those keys, whether the trust file lists them or not.
   */
  static async connect(
    deployment: Deployment,
    signingKeys?: ReadonlyMap<ServiceName, KeyObject>,
  ): Promise<ServiceImpersonator> {
    if (!deployment.natsUrl) throw new Error(`the ${deployment.shape} shape has no NATS bus`);
    const services: ServiceName[] = ['auth', 'orders', 'billing'];
    const ring = signingKeys
      ? KeyRing.signingOnly(signingKeys)
      : KeyRing.load(new SecretFiles(deployment.secretsDir), services);
    const events = { record: (_event: SecurityEvent) => undefined } as SecurityEvents;
    const codec = new EnvelopeCodec(ring, 60_000, events);
    // As the test user where the bus requires certificates: it may send on any subject.
    const nats = await connect({ ...deployment.natsOptions(), name: 'portcullis-e2e' });
    return new ServiceImpersonator(nats, codec);
  }

  /**
   * Publishes an event signed by `sender`, acting for `actor`, where services take events
   * from: the durable stream (subject `evt.<type>`). Resolves once the stream stored it.
   */
  async publish(
    sender: ServiceName,
    type: string,
    payload: object,
    actor?: Actor,
  ): Promise<Buffer> {
    const wire = this.seal(sender, type, payload, { actor });
    await this.publishWire(type, wire);
    return wire;
  }

  /** Seals an event without sending it, e.g. to alter or replay it. */
  seal(
    sender: ServiceName,
    type: string,
    payload: object,
    options: { actor?: Actor; ttlMs?: number; id?: string } = {},
  ): Buffer {
    return this.codec.seal(sender, 'event', type, payload, {
      correlationId: `e2e-${randomUUID()}`,
      ...options,
    });
  }

  /** Puts exact bytes on the stream, under a fresh stream message id (no stream de-dup). */
  async publishWire(type: string, wire: Uint8Array): Promise<void> {
    await jetstream(this.nats).publish(`evt.${type}`, wire, { msgID: randomUUID() });
  }

  /** The bytes of the newest event of `type` in the durable stream, as a service sent them. */
  async capture(type: string): Promise<Buffer> {
    const stored = await (
      await jetstreamManager(this.nats)
    ).streams.getMessage(EVENTS_STREAM, { last_by_subj: `evt.${type}` });
    if (!stored) throw new Error(`no ${type} event in the stream`);
    return eventsOf(stored).at(-1)!;
  }

  /** The `type` events among the stream's latest `span` messages, newest first. */
  async recent(type: string, span = 400): Promise<Buffer[]> {
    const wires: Buffer[] = [];
    for (const events of await this.recentMessages(type, span)) wires.push(...events.reverse());
    return wires;
  }

  /** How many of the stream's latest `span` messages of `type` are frames of several events. */
  async framesAmongRecent(type: string, span = 400): Promise<number> {
    return (await this.recentMessages(type, span)).filter((events) => events.length > 1).length;
  }

  /** The events of each `type` message among the stream's latest `span`, newest first. */
  private async recentMessages(type: string, span: number): Promise<Buffer[][]> {
    const manager = await jetstreamManager(this.nats);
    const last = (await manager.streams.info(EVENTS_STREAM)).state.last_seq;
    const messages: Buffer[][] = [];
    for (let seq = last; seq > 0 && seq > last - span; seq -= 1) {
      const stored = await manager.streams.getMessage(EVENTS_STREAM, { seq }).catch(() => null);
      if (stored?.subject === `evt.${type}`) messages.push(eventsOf(stored));
    }
    return messages;
  }

  /**
   * Puts a frame of events on the stream as a relay would (one message, the frame header
   * giving their number), or exact bytes under any header value given.
   */
  async publishFrame(type: string, body: Uint8Array, declared: string): Promise<void> {
    const frame = headers();
    frame.set(FRAME_HEADER, declared);
    await jetstream(this.nats).publish(`evt.${type}`, body, {
      msgID: randomUUID(),
      headers: frame,
    });
  }

  /** Sends a request signed by `sender`; resolves once any answer (or none) came back. */
  async request(sender: ServiceName, type: string, payload: object, actor?: Actor): Promise<void> {
    const wire = this.codec.seal(sender, 'request', type, payload, {
      rid: randomUUID(),
      correlationId: `e2e-${randomUUID()}`,
      actor,
    });
    await this.nats.request(type, wire, { timeout: 3000 }).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.nats.close();
  }
}

/**
 * The events one stream message carries, given its body and its frame header (if any): those
 * of a frame, or the message itself.
 */
export function eventsIn(data: Uint8Array, declared: string | undefined): Buffer[] {
  const events = declared ? readFrame(data, declared) : undefined;
  return (events ?? [data]).map((event) => Buffer.from(event));
}

function eventsOf(stored: { data: Uint8Array; header?: { get(name: string): string } }): Buffer[] {
  let declared: string | undefined;
  try {
    declared = stored.header?.get(FRAME_HEADER);
  } catch {
    return []; // headers no client can read: a hostile message, no event of a service
  }
  return eventsIn(stored.data, declared);
}
