import { randomUUID } from 'node:crypto';

import { type AuditRecord, buildAuditRecord } from '@portcullis/audit';
import { auditBatchMessageId } from '@portcullis/contracts';
import type { ServiceName } from '@portcullis/core';
import type { VerifiedMessage } from '@portcullis/messaging';

import { EnvelopeFixture, type CodecUnderTest } from '../../../../jest/signed-envelopes';
import type { AuditCollector } from './audit-collector';
import { AuditRecordsHandler } from './audit-records.handler';

class CollectorDouble {
  readonly collected: AuditRecord[][] = [];
  collect(records: readonly AuditRecord[]): Promise<void> {
    this.collected.push([...records]);
    return Promise.resolve();
  }
}

const record = (service: ServiceName): AuditRecord =>
  buildAuditRecord({ type: 'http.request', outcome: 'allowed' }, service, {
    correlationId: randomUUID(),
  });

describe(AuditRecordsHandler.name, () => {
  let fixture: EnvelopeFixture;
  let codec: CodecUnderTest;
  let collector: CollectorDouble;
  let handler: AuditRecordsHandler;

  beforeAll(() => {
    fixture = EnvelopeFixture.create();
  });

  afterAll(() => {
    fixture.remove();
  });

  beforeEach(() => {
    codec = fixture.codec();
    collector = new CollectorDouble();
    handler = new AuditRecordsHandler(collector as unknown as AuditCollector, codec.events);
  });

  /** The message as the transport hands it over: sealed by `sender`, opened and validated. */
  function received(sender: ServiceName, payload: object, id: string): VerifiedMessage<never> {
    const type = `${sender}.audit.recorded`;
    const wire = codec.codec.seal(sender, 'event', type, payload, { id, correlationId: 'c-1' });
    return codec.codec.open(wire, { subject: type, kinds: ['event'] }) as VerifiedMessage<never>;
  }

  const batchOf = (sender: ServiceName, records: AuditRecord[]): VerifiedMessage<never> =>
    received(sender, { records }, auditBatchMessageId(records.map((r) => r.id)));

  const refusals = (): Array<{ reason?: string; details?: object }> =>
    codec.events.recorded.filter((event) => event.type === 'audit.record_refused');

  describe('a batch', () => {
    it('hands every record from its sender to the collector at once', async () => {
      const records = [record('orders'), record('orders'), record('orders')];

      await handler.fromOrders(batchOf('orders', records));

      expect(collector.collected).toEqual([records]);
      expect(refusals()).toEqual([]);
    });

    it('refuses, and records, each record naming another service; the others go on', async () => {
      const honest = record('billing');
      const forged = record('auth');

      await handler.fromBilling(batchOf('billing', [honest, forged]));

      expect(collector.collected).toEqual([[honest]]);
      expect(refusals()).toEqual([
        expect.objectContaining({
          reason: 'service_mismatch',
          details: expect.objectContaining({
            sender: 'billing',
            claimedService: 'auth',
            recordId: forged.id,
          }) as object,
        }),
      ]);
    });

    it('is refused whole when its message id is not the one its records give', async () => {
      const records = [record('orders'), record('orders')];

      await handler.fromOrders(received('orders', { records }, randomUUID()));

      expect(collector.collected).toEqual([]);
      expect(refusals()).toEqual([
        expect.objectContaining({
          reason: 'id_mismatch',
          details: expect.objectContaining({ records: 2 }) as object,
        }),
      ]);
    });
  });

  describe('one record in the earlier form', () => {
    it('is collected when its id is the message id', async () => {
      const single = record('auth');

      await handler.fromAuth(received('auth', single, single.id));

      expect(collector.collected).toEqual([[single]]);
    });

    it('is refused when its id is not the message id', async () => {
      await handler.fromAuth(received('auth', record('auth'), randomUUID()));

      expect(collector.collected).toEqual([]);
      expect(refusals()).toEqual([expect.objectContaining({ reason: 'id_mismatch' })]);
    });

    it('is refused when it names another service than its sender', async () => {
      const forged = record('orders');

      await handler.fromAuth(received('auth', forged, forged.id));

      expect(collector.collected).toEqual([]);
      expect(refusals()).toEqual([expect.objectContaining({ reason: 'service_mismatch' })]);
    });
  });
});
