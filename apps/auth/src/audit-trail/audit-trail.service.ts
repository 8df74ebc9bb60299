import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';

import type { ChainVerification } from '@portcullis/audit';

import { AuditChain, RECORD_COLUMNS, type RecordRow, rowToChained } from './audit-chain';
import type { AuditEventView, AuditEventsPage, AuditEventsQuery } from './audit-trail.dto';

export const AUDIT_DATA_SOURCE = Symbol('AUDIT_DATA_SOURCE');

/** Reads the trail for auditors: filtered, newest first, and its verification. */
@Injectable()
export class AuditTrailService {
  private verifying?: Promise<ChainVerification>;
  constructor(
    @Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource,
    @Inject(AuditChain) private readonly chain: AuditChain,
  ) {}

  async find(query: AuditEventsQuery): Promise<AuditEventsPage> {
    const filters: string[] = [];
    const values: unknown[] = [];
    const where = (column: string, operator: string, value: unknown): void => {
      if (value === undefined) return;
      values.push(value);
      filters.push(`${column} ${operator} $${values.length}`);
    };
    where('type', '=', query.type);
    where('actor_user_id', '=', query.actor);
    where('resource_type', '=', query.resourceType);
    where('resource_id', '=', query.resourceId);
    where('outcome', '=', query.outcome);
    where('correlation_id', '=', query.correlationId);
    where('time', '>=', query.from);
    where('time', '<', query.to);
    where('sequence', '<', query.before);
    values.push(query.limit + 1);
    const rows = await this.db.query<RecordRow[]>(
      `SELECT ${RECORD_COLUMNS} FROM audit.records
        ${filters.length > 0 ? `WHERE ${filters.join(' AND ')}` : ''}
        ORDER BY sequence DESC LIMIT $${values.length}`,
      values,
    );
    const page = rows.slice(0, query.limit).map(toView);
    return {
      items: page,
      next: rows.length > query.limit ? page[page.length - 1].sequence : undefined,
    };
  }

  /**
   * Checks the whole chain. Callers asking while a check runs share its result, so however
   * many ask at once, one walk of the chain runs at a time.
   */
  verify(): Promise<ChainVerification> {
    this.verifying ??= this.chain.verify().finally(() => {
      this.verifying = undefined;
    });
    return this.verifying;
  }
}

function toView(row: RecordRow): AuditEventView {
  const { sequence, record, hash } = rowToChained(row);
  return { sequence, ...record, hash } as AuditEventView;
}
