import {
  DynamicModule,
  Global,
  Inject,
  Injectable,
  Module,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';
import { ClientNats } from '@nestjs/microservices';
import { getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';

import { SecurityEvents } from '@portcullis/audit';
import {
  APP_CONFIG,
  type AppConfig,
  HOSTED_SERVICES,
  HealthRegistry,
  Metrics,
  SECRET_FILES,
  type ServiceName,
  TRANSPORT_SERVER,
  natsTransportSecurity,
} from '@portcullis/core';
import type { SecretsProvider } from '@portcullis/crypto';

import { Inbox } from './durable/inbox';
import { Outbox } from './durable/outbox';
import { OutboxAuditSink } from './durable/outbox-audit-sink';
import { OutboxRelay } from './durable/outbox-relay';
import { EnvelopeCodec } from './envelope-codec';
import { ConsumerEnvelopeSerializer, ProducerEnvelopeSerializer } from './envelope-serializers';
import { KeyRing } from './key-ring';
import { SignatureVerifierPool } from './signature-verifier-pool';
import { type BusProxy, MessageClient } from './message-client';
import { ReplayGuard } from './replay-guard';
import { InProcessClient, InProcessServer, SignedNatsServer } from './transports';

function natsConnectionOptions(config: AppConfig, name: string): Record<string, unknown> {
  return {
    servers: config.natsUrl,
    name: `portcullis-${name}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // A request (and so every JetStream publish) would otherwise build an Error up front to
    // keep the caller's stack for a failure that rarely comes; no answer shows stacks anyway.
    noAsyncTraces: true,
    // TLS with this process's client certificate, and inboxes that only its NATS user reads.
    ...natsTransportSecurity(config.natsTls),
  };
}

/** Process-wide messaging: the key ring, the envelope codec and the transport server. */
@Global()
@Module({})
export class MessagingModule {
  static forRoot(): DynamicModule {
    return {
      module: MessagingModule,
      providers: [
        {
          provide: KeyRing,
          inject: [SECRET_FILES, HOSTED_SERVICES, APP_CONFIG],
          useFactory: (secrets: SecretsProvider, services: ServiceName[], config: AppConfig) => {
            const ring = KeyRing.load(secrets, services);
            ring.startReloading(config.keyReloadSeconds * 1000);
            return ring;
          },
        },
        {
          // Stopped with the application (its onApplicationShutdown).
          provide: SignatureVerifierPool,
          inject: [APP_CONFIG],
          useFactory: (config: AppConfig) => new SignatureVerifierPool(config.messageVerifyWorkers),
        },
        {
          provide: EnvelopeCodec,
          inject: [KeyRing, APP_CONFIG, SecurityEvents, SignatureVerifierPool],
          useFactory: (
            keys: KeyRing,
            config: AppConfig,
            events: SecurityEvents,
            signatures: SignatureVerifierPool,
          ) =>
            new EnvelopeCodec(
              keys,
              config.messageTtlSeconds * 1000,
              events,
              new ReplayGuard(),
              Date.now,
              signatures,
            ),
        },
        {
          provide: TRANSPORT_SERVER,
          inject: [EnvelopeCodec, APP_CONFIG, HOSTED_SERVICES, SecurityEvents, HealthRegistry],
          useFactory: (
            codec: EnvelopeCodec,
            config: AppConfig,
            services: ServiceName[],
            events: SecurityEvents,
            health: HealthRegistry,
          ) => {
            const envelopes = new ConsumerEnvelopeSerializer(codec, services);
            const hostName = services.length === 1 ? services[0] : 'platform';
            const group = config.natsQueue ?? `portcullis.${hostName}`;
            const options = {
              ...natsConnectionOptions(config, hostName),
              queue: group,
              serializer: envelopes,
              deserializer: envelopes,
            };
            const durable = { codec, events, group: group.replace(/\./g, '_') };
            const server = config.natsUrl
              ? new SignedNatsServer(options, durable)
              : new InProcessServer(options, durable);
            health.register(`events:${hostName}`, () =>
              server.consumersStarted()
                ? Promise.resolve()
                : Promise.reject(new Error('event consumers not started')),
            );
            return server;
          },
        },
      ],
      exports: [KeyRing, EnvelopeCodec, TRANSPORT_SERVER],
    };
  }

  /**
   * The {@link MessageClient} of one service, signing as that service. The same module object
   * for the same service: Nest tells modules apart by reference, and the security module
   * imports this one too, which must not give the service a second client and relay.
   */
  static forService(service: ServiceName): DynamicModule {
    let module = MessagingModule.services.get(service);
    if (!module) {
      module = MessagingModule.buildForService(service);
      MessagingModule.services.set(service, module);
    }
    return module;
  }

  private static readonly services = new Map<ServiceName, DynamicModule>();

  private static buildForService(service: ServiceName): DynamicModule {
    return {
      module: MessagingModule,
      global: false,
      providers: [
        {
          provide: MessageClient,
          inject: [EnvelopeCodec, APP_CONFIG],
          useFactory: (codec: EnvelopeCodec, config: AppConfig) => {
            const envelopes = new ProducerEnvelopeSerializer(codec, service);
            const options = {
              ...natsConnectionOptions(config, service),
              serializer: envelopes,
              deserializer: envelopes,
            };
            const proxy: BusProxy = config.natsUrl
              ? new ClientNats(options)
              : new InProcessClient(options);
            return new MessageClient(service, proxy);
          },
        },
        { provide: Outbox, useValue: new Outbox(service) },
        {
          provide: OutboxAuditSink,
          inject: [getDataSourceToken(service), Outbox, SecurityEvents],
          useFactory: (db: DataSource, outbox: Outbox, events: SecurityEvents) => {
            const sink = new OutboxAuditSink(service, db, outbox);
            events.attach(service, sink);
            return sink;
          },
        },
        {
          provide: Inbox,
          inject: [getDataSourceToken(service), SecurityEvents, OutboxAuditSink],
          useFactory: (db: DataSource, events: SecurityEvents, audit: OutboxAuditSink) =>
            new Inbox(service, db, events, audit),
        },
        {
          provide: OutboxRelay,
          inject: [getDataSourceToken(service), EnvelopeCodec, MessageClient],
          useFactory: (db: DataSource, codec: EnvelopeCodec, client: MessageClient) =>
            new OutboxRelay(service, db, codec, () => client.eventStream()),
        },
        BusLifecycle,
      ],
      exports: [MessageClient, Outbox, OutboxAuditSink, Inbox],
    };
  }
}

@Injectable()
class BusLifecycle implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(MessageClient) private readonly client: MessageClient,
    @Inject(OutboxRelay) private readonly relay: OutboxRelay,
    private readonly health: HealthRegistry,
    // Attaches the service's audit records to its outbox before anything is recorded.
    @Inject(OutboxAuditSink) readonly auditSink: OutboxAuditSink,
    private readonly events: SecurityEvents,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.client.connect();
    this.health.register(`bus:${this.client.service}`, () => this.client.connect());
    Metrics.watchOutbox(this.client.service, () => this.relay.backlog());
  }

  onApplicationBootstrap(): void {
    this.relay.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.events.flush().catch(() => undefined);
    await this.relay.stop();
    await this.client.close();
  }
}
