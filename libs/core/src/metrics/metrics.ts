import { Counter, Gauge, Histogram, collectDefaultMetrics, register } from 'prom-client';

/** What an outbox holds that the relay has not yet published. */
export interface OutboxBacklog {
  readonly pending: number;
  /** Age in seconds of the oldest unpublished event; 0 when there is none. */
  readonly oldestAgeSeconds: number;
}

/** Where a service's outbox backlog is read from, on every scrape. */
export type OutboxBacklogProbe = () => Promise<OutboxBacklog>;

const outboxProbes = new Map<string, OutboxBacklogProbe>();
/** The last reading of each service's outbox, so both gauges come from one query. */
const outboxReadings = new Map<string, Promise<OutboxBacklog | undefined>>();

function readOutboxes(): Map<string, Promise<OutboxBacklog | undefined>> {
  if (outboxReadings.size === 0) {
    for (const [service, probe] of outboxProbes) {
      // A database that is down leaves the gauges without a value rather than failing the
      // scrape; readiness reports the database.
      outboxReadings.set(
        service,
        probe().catch(() => undefined),
      );
    }
    setImmediate(() => outboxReadings.clear());
  }
  return outboxReadings;
}

async function collectOutbox(
  gauge: Gauge<'service'>,
  value: (backlog: OutboxBacklog) => number,
): Promise<void> {
  gauge.reset();
  for (const [service, reading] of readOutboxes()) {
    const backlog = await reading;
    if (backlog) gauge.set({ service }, value(backlog));
  }
}

collectDefaultMetrics({ register });

/**
 * The process's metrics, all in prom-client's default registry (`register`), which
 * `GET /metrics` serves. Any library may define more with prom-client directly.
 */
export const Metrics = {
  /** Duration of every HTTP request by method, route pattern and status. */
  httpRequestDuration: new Histogram({
    name: 'portcullis_http_request_duration_seconds',
    help: 'Duration of HTTP requests, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  }),

  /** Security decisions recorded, by type, outcome and reason (refused tokens and messages). */
  securityEvents: new Counter({
    name: 'portcullis_security_events_total',
    help: 'Security events recorded, by type, outcome and reason',
    labelNames: ['type', 'outcome', 'reason'] as const,
  }),

  /** Access tokens answered from the verified-token cache. */
  tokenCacheHits: new Counter({
    name: 'portcullis_token_cache_hits_total',
    help: 'Access tokens found in the verified-token cache',
  }),

  /** Access tokens the cache did not hold, which were verified in full. */
  tokenCacheMisses: new Counter({
    name: 'portcullis_token_cache_misses_total',
    help: 'Access tokens not in the verified-token cache, verified in full',
  }),

  /** Audit records appended to the central trail; the audit collector increments it. */
  auditRecordsAppended: new Counter({
    name: 'portcullis_audit_records_appended_total',
    help: 'Audit records appended to the audit trail',
  }),

  outboxPending: new Gauge({
    name: 'portcullis_outbox_pending_events',
    help: 'Events in the outbox not yet published, by service',
    labelNames: ['service'] as const,
    async collect() {
      await collectOutbox(this, (backlog) => backlog.pending);
    },
  }),

  outboxOldestAge: new Gauge({
    name: 'portcullis_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest unpublished outbox event, by service (0 when none)',
    labelNames: ['service'] as const,
    async collect() {
      await collectOutbox(this, (backlog) => backlog.oldestAgeSeconds);
    },
  }),

  /** Reads a service's outbox backlog on every scrape; the messaging library registers it. */
  watchOutbox(service: string, probe: OutboxBacklogProbe): void {
    outboxProbes.set(service, probe);
  },

  /** Stops reading a service's outbox, e.g. when its database closes. */
  unwatchOutbox(service: string): void {
    outboxProbes.delete(service);
  },
};
