import { createHash } from 'node:crypto';

import type { AuditRecord } from '../audit-record';

/** `prev_hash` of the first record of a chain: 32 zero bytes, in hex. */
export const GENESIS_HASH = '0'.repeat(64);

/** A record as the chain holds it: its place and the record itself. */
export interface ChainedRecord {
  readonly sequence: number;
  readonly record: AuditRecord;
}

/**
 * The canonical byte form of a chained record: UTF-8 JSON of an object whose fields come in
 * this fixed order, every optional field present (null when absent), `time` as ISO 8601 with
 * milliseconds in UTC, and the keys of `details` sorted. An actor with no field set, an empty
 * role list and empty details count as absent, so the form survives a round trip through the
 * database's columns:
 *
 * `{"v":1,"sequence","id","time","service","type","outcome",
 *   "actor":{"userId","roles","sessionId","clientIp"},"resource":{"type","id"},
 *   "correlationId","traceparent","reason","details"}`
 *
 * The sequence number is part of the bytes, so a record moved to another place no longer
 * matches its hash.
 */
export function canonicalBytes({ sequence, record }: ChainedRecord): Buffer {
  const actor = record.actor;
  const resource = record.resource;
  const form = {
    v: 1,
    sequence,
    id: record.id,
    time: new Date(record.time).toISOString(),
    service: record.service,
    type: record.type,
    outcome: record.outcome,
    actor: hasActor(actor)
      ? {
          userId: actor.userId ?? null,
          roles: actor.roles?.length ? [...actor.roles] : null,
          sessionId: actor.sessionId ?? null,
          clientIp: actor.clientIp ?? null,
        }
      : null,
    resource: resource ? { type: resource.type, id: resource.id ?? null } : null,
    correlationId: record.correlationId,
    traceparent: record.traceparent ?? null,
    reason: record.reason ?? null,
    details:
      record.details && Object.keys(record.details).length > 0
        ? sortedDetails(record.details)
        : null,
  };
  return Buffer.from(JSON.stringify(form), 'utf8');
}

/** `SHA-256(prev_hash || canonical bytes)`, both hashes as 64 lower-case hex digits. */
export function chainHash(previousHash: string, chained: ChainedRecord): string {
  return createHash('sha256')
    .update(Buffer.from(previousHash, 'hex'))
    .update(canonicalBytes(chained))
    .digest('hex');
}

function hasActor(actor: AuditRecord['actor']): actor is NonNullable<AuditRecord['actor']> {
  if (!actor) return false;
  const fields = [actor.userId, actor.sessionId, actor.clientIp];
  return fields.some((field) => field !== undefined && field !== null) || !!actor.roles?.length;
}

function sortedDetails(details: NonNullable<AuditRecord['details']>): Record<string, unknown> {
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(details).sort()) sorted[key] = details[key];
  return sorted;
}
