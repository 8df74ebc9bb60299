import { Inject, Injectable, Logger, Optional } from '@nestjs/common';

import { AUDIT_OBSERVERS, type AuditObserver, type AuditRecord } from '@portcullis/audit';
import { Metrics } from '@portcullis/core';

import { AuditChain } from './audit-chain';

/** Most records appended in one transaction. */
const MAX_BATCH = 1_000;

interface Waiting {
  readonly records: readonly AuditRecord[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Gathers the records that arrive together (the messages in hand, each carrying a batch) and
 * appends them to the chain in one transaction; each delivery is acknowledged only once its
 * records have committed. After each committed batch,
 * every registered observer sees the records appended (an observer's failure is logged, and
 * never undoes the append).
 */
@Injectable()
export class AuditCollector {
  private readonly logger = new Logger(AuditCollector.name);
  private queue: Waiting[] = [];
  private draining?: Promise<void>;

  constructor(
    @Inject(AuditChain) private readonly chain: AuditChain,
    @Optional() @Inject(AUDIT_OBSERVERS) private readonly observers: AuditObserver[] = [],
  ) {}

  /** Resolves once the records are in the chain (or were already). */
  collect(records: readonly AuditRecord[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ records, resolve, reject });
      this.draining ??= new Promise<void>((done) => setImmediate(done))
        .then(() => this.drain())
        .finally(() => {
          this.draining = undefined;
        });
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      const records = batch.flatMap((waiting) => waiting.records);
      let appended: AuditRecord[];
      try {
        appended = await this.chain.append(records);
      } catch (error) {
        this.logger.warn({
          msg: 'audit batch not appended',
          size: records.length,
          error: String(error),
        });
        for (const waiting of batch) waiting.reject(error);
        continue;
      }
      for (const waiting of batch) waiting.resolve();
      Metrics.auditRecordsAppended.inc(appended.length);
      if (appended.length > 0) await this.notify(appended);
    }
  }

  /** The deliveries waiting longest, up to {@link MAX_BATCH} records (at least one delivery). */
  private takeBatch(): Waiting[] {
    let count = 0;
    let taken = 0;
    while (taken < this.queue.length) {
      const size = this.queue[taken].records.length;
      if (taken > 0 && count + size > MAX_BATCH) break;
      count += size;
      taken += 1;
    }
    return this.queue.splice(0, taken);
  }

  private async notify(records: AuditRecord[]): Promise<void> {
    for (const observer of this.observers ?? []) {
      try {
        await observer.observe(records);
      } catch (error) {
        this.logger.error({ msg: 'audit observer failed', error: String(error) });
      }
    }
  }
}
