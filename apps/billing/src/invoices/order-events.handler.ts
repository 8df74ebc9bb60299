import { Controller, ForbiddenException, Inject } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { randomUUID } from 'node:crypto';

import { SecurityEvents } from '@portcullis/audit';
import type {
  OrderCreatedEvent,
  VoidInvoiceReply,
  VoidInvoiceRequest,
} from '@portcullis/contracts';
import { Inbox, type VerifiedMessage } from '@portcullis/messaging';
import { mayAccess } from '@portcullis/security';

import { InvoicesService } from './invoices.service';

/**
 * Reacts to orders' messages. The transport has verified the envelope and that orders may
 * send these types; here the acting user is checked against the customer the payload names.
 */
@Controller()
export class OrderEventsHandler {
  constructor(
    private readonly invoices: InvoicesService,
    private readonly events: SecurityEvents,
    @Inject(Inbox) private readonly inbox: Inbox,
  ) {}

  @EventPattern('orders.created')
  async onOrderCreated(@Payload() message: VerifiedMessage<OrderCreatedEvent>): Promise<void> {
    if (!this.actsFor(message, message.payload.customerId, false)) return;
    const opening = { invoiceId: randomUUID(), order: message.payload };
    await this.inbox.onceIn(message, this.invoices.opening, opening);
  }

  @MessagePattern('billing.invoice.void')
  async voidInvoice(
    @Payload() message: VerifiedMessage<VoidInvoiceRequest>,
  ): Promise<VoidInvoiceReply> {
    if (!this.actsFor(message, message.payload.customerId, true)) {
      throw new ForbiddenException('the acting user may not void this invoice');
    }
    return { outcome: await this.invoices.voidFor(message.payload) };
  }

  /** The envelope's actor must be the customer named in the payload, or an admin if allowed. */
  private actsFor(message: VerifiedMessage, customerId: string, adminMay: boolean): boolean {
    const actor = message.actor;
    const allowed =
      actor !== undefined && (adminMay ? mayAccess(actor, customerId) : actor.id === customerId);
    if (!allowed) {
      this.events.record({
        type: 'message.refused',
        outcome: 'denied',
        reason: 'actor_not_owner',
        actorId: actor?.id,
        details: { messageType: message.type, sender: message.sender },
      });
    }
    return allowed;
  }
}
