import { Controller, Inject } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';

import { SecurityEvents } from '@portcullis/audit';
import type { InvoicePaidEvent } from '@portcullis/contracts';
import { Inbox, type VerifiedMessage } from '@portcullis/messaging';
import { mayAccess } from '@portcullis/security';

import { OrdersService } from './orders.service';

/** Reacts to billing's events. The envelope is verified; the actor is checked here. */
@Controller()
export class BillingEventsHandler {
  constructor(
    private readonly orders: OrdersService,
    private readonly events: SecurityEvents,
    @Inject(Inbox) private readonly inbox: Inbox,
  ) {}

  @EventPattern('billing.invoice.paid')
  async onInvoicePaid(@Payload() message: VerifiedMessage<InvoicePaidEvent>): Promise<void> {
    const { orderId, customerId } = message.payload;
    if (!message.actor || !mayAccess(message.actor, customerId)) {
      this.events.record({
        type: 'message.refused',
        outcome: 'denied',
        reason: 'actor_not_owner',
        resourceType: 'order',
        resourceId: orderId,
        details: { messageType: message.type, sender: message.sender },
      });
      return;
    }
    await this.inbox.once(message, (tx) => this.orders.markPaid(tx, orderId, customerId));
  }
}
