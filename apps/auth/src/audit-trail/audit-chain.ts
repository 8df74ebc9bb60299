import type { DataSource } from 'typeorm';

import { preparedStatement } from '@portcullis/core';

import {
  type AuditRecord,
  type ChainHead,
  type ChainVerification,
  type StoredChainRow,
  chainHash,
  verifyChain,
} from '@portcullis/audit';

/** The columns of `audit.records`, as the driver returns them. */
export interface RecordRow {
  sequence: string | number;
  id: string;
  time: Date | string;
  service: string;
  type: string;
  outcome: string;
  actor_user_id: string | null;
  actor_roles: string[] | null;
  actor_session_id: string | null;
  actor_client_ip: string | null;
  resource_type: string | null;
  resource_id: string | null;
  correlation_id: string;
  traceparent: string | null;
  reason: string | null;
  details: Record<string, string | number | boolean | null> | null;
  prev_hash: string;
  hash: string;
}

export const RECORD_COLUMNS =
  'sequence, id, time, service, type, outcome, actor_user_id, actor_roles, actor_session_id, ' +
  'actor_client_ip, resource_type, resource_id, correlation_id, traceparent, reason, details, ' +
  'prev_hash, hash';

const orUndefined = <T>(value: T | null): T | undefined => (value === null ? undefined : value);

/** A stored row as the record it holds, with its place and hashes. */
export function rowToChained(row: RecordRow): StoredChainRow {
  const actor = {
    userId: orUndefined(row.actor_user_id),
    roles: orUndefined(row.actor_roles),
    sessionId: orUndefined(row.actor_session_id),
    clientIp: orUndefined(row.actor_client_ip),
  };
  const record: AuditRecord = {
    id: row.id,
    time: new Date(row.time).toISOString(),
    service: row.service as AuditRecord['service'],
    type: row.type,
    outcome: row.outcome as AuditRecord['outcome'],
    actor: Object.values(actor).some((value) => value !== undefined) ? actor : undefined,
    resource: row.resource_type
      ? { type: row.resource_type, id: orUndefined(row.resource_id) }
      : undefined,
    correlationId: row.correlation_id,
    traceparent: orUndefined(row.traceparent),
    reason: orUndefined(row.reason),
    details: orUndefined(row.details),
  };
  return { sequence: Number(row.sequence), record, prevHash: row.prev_hash, hash: row.hash };
}

/** Reads the chain page by page for {@link verifyChain}, and its head. */
export async function verifyStoredChain(
  query: <T>(sql: string, parameters?: unknown[]) => Promise<T>,
): Promise<ChainVerification> {
  const heads = await query<Array<{ sequence: string | number; hash: string }>>(
    'SELECT sequence, hash FROM audit.chain_head',
  );
  const head: ChainHead | undefined = heads[0]
    ? { sequence: Number(heads[0].sequence), hash: heads[0].hash }
    : undefined;
  return verifyChain(async (after, limit) => {
    const rows = await query<RecordRow[]>(
      `SELECT ${RECORD_COLUMNS} FROM audit.records WHERE sequence > $1 ORDER BY sequence LIMIT $2`,
      [after, limit],
    );
    return rows.map(rowToChained);
  }, head);
}

/**
 * Which of the given ids the chain holds already. A statement of its own after the head's lock:
 * a statement that waited for the lock reads the records as they were when it started, so it
 * would miss those the appender before it has just committed. Not prepared: planned once while
 * the table is small, the lookup by id keeps scanning the whole table as it grows.
 */
const SEEN = 'SELECT id FROM audit.records WHERE id = ANY($1::uuid[])';

/** The new records and the head that now ends them, in one statement. */
const APPEND = preparedStatement(
  `WITH appended AS (
     INSERT INTO audit.records (${RECORD_COLUMNS})
     SELECT ${RECORD_COLUMNS}
       FROM jsonb_to_recordset($1::jsonb) AS r(
         sequence bigint, id uuid, time timestamptz, service varchar, type varchar,
         outcome varchar, actor_user_id varchar, actor_roles jsonb, actor_session_id varchar,
         actor_client_ip varchar, resource_type varchar, resource_id varchar,
         correlation_id varchar, traceparent varchar, reason varchar, details jsonb,
         prev_hash char(64), hash char(64)))
   UPDATE audit.chain_head SET sequence = $2, hash = $3`,
);

/**
 * The hash chain in `audit.records`. Appends are serialized by locking the chain head, and a
 * batch is appended in one transaction with one multi-row insert; a record whose id is in the
 * chain already is skipped, so a redelivery is appended once.
 */
export class AuditChain {
  constructor(private readonly db: DataSource) {}

  /** Appends the records in order; resolves to those appended now (not seen before). */
  append(records: readonly AuditRecord[]): Promise<AuditRecord[]> {
    return this.db.transaction(async (tx) => {
      const [head] = await tx.query<Array<{ sequence: string | number; hash: string }>>(
        'SELECT sequence, hash FROM audit.chain_head FOR UPDATE',
      );
      const seen = await tx.query<Array<{ id: string }>>(SEEN, [records.map((r) => r.id)]);
      const known = new Set(seen.map((row) => row.id));
      let sequence = Number(head.sequence);
      let hash = head.hash;
      const appended: AuditRecord[] = [];
      const rows: Array<Record<string, unknown>> = [];
      for (const record of records) {
        if (known.has(record.id)) continue;
        known.add(record.id);
        sequence += 1;
        const prevHash = hash;
        hash = chainHash(prevHash, { sequence, record });
        appended.push(record);
        rows.push(toColumns(sequence, record, prevHash, hash));
      }
      if (rows.length === 0) return appended;
      await tx.query(APPEND, [JSON.stringify(rows), sequence, hash]);
      return appended;
    });
  }

  verify(): Promise<ChainVerification> {
    return verifyStoredChain((sql, parameters) => this.db.query(sql, parameters));
  }
}

function toColumns(
  sequence: number,
  record: AuditRecord,
  prevHash: string,
  hash: string,
): Record<string, unknown> {
  return {
    sequence,
    id: record.id,
    time: new Date(record.time).toISOString(),
    service: record.service,
    type: record.type,
    outcome: record.outcome,
    actor_user_id: record.actor?.userId ?? null,
    actor_roles: record.actor?.roles?.length ? record.actor.roles : null,
    actor_session_id: record.actor?.sessionId ?? null,
    actor_client_ip: record.actor?.clientIp ?? null,
    resource_type: record.resource?.type ?? null,
    resource_id: record.resource?.id ?? null,
    correlation_id: record.correlationId,
    traceparent: record.traceparent ?? null,
    reason: record.reason ?? null,
    details: record.details && Object.keys(record.details).length > 0 ? record.details : null,
    prev_hash: prevHash,
    hash,
  };
}
