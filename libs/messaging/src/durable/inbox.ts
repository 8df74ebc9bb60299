import type { DataSource, EntityManager } from 'typeorm';

import type { SecurityEvents } from '@portcullis/audit';
import { isAuditEventType } from '@portcullis/contracts';
import { RequestContext, type ServiceName } from '@portcullis/core';

import type { VerifiedMessage } from '../envelope';

/**
 * Applies each message at most once: its id is recorded in the service's inbox in the same
 * transaction as its effect. A redelivery, or a captured message replayed a week later,
 * finds the id and changes nothing; it is recorded as a refused replay. A message applied is
 * recorded as `message.handled` in the audit trail, in the transaction of its effect.
 */
export class Inbox {
  constructor(
    private readonly service: ServiceName,
    private readonly db: DataSource,
    private readonly events: SecurityEvents,
  ) {}

  /** Runs `effect` in a transaction unless the message was applied before; true if it ran. */
  async once(
    message: VerifiedMessage,
    effect: (tx: EntityManager) => Promise<void>,
  ): Promise<boolean> {
    const context = RequestContext.current();
    if (context) context.service = this.service;
    const applied = await this.db.transaction(async (tx) => {
      const inserted = await tx.query<Array<{ message_id: string }>>(
        `INSERT INTO "${this.service}".inbox (message_id, type, sender) VALUES ($1, $2, $3)
         ON CONFLICT (message_id) DO NOTHING RETURNING message_id`,
        [message.id, message.type, message.sender],
      );
      if (inserted.length === 0) return false;
      await effect(tx);
      if (!isAuditEventType(message.type)) {
        await this.events.recordIn(tx, {
          type: 'message.handled',
          outcome: 'allowed',
          service: this.service,
          details: { messageType: message.type, sender: message.sender, messageId: message.id },
        });
      }
      return true;
    });
    if (!applied) {
      this.events.record({
        type: 'message.refused',
        outcome: 'denied',
        service: this.service,
        reason: 'replayed',
        details: { messageType: message.type, sender: message.sender, messageId: message.id },
      });
    }
    return applied;
  }
}
