import {
  ConflictException,
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  NotFoundException,
  UnprocessableEntityException,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, randomUUID } from 'node:crypto';
import { DataSource, type EntityManager } from 'typeorm';

import { SecurityEvents } from '@portcullis/audit';
import type { OrderCreatedEvent, VoidInvoiceRequest } from '@portcullis/contracts';
import { type Actor, FieldEncryption } from '@portcullis/core';
import { type InboxBatchItem, Outbox } from '@portcullis/messaging';
import { mayAccess, ownerScope } from '@portcullis/security';

import { Payment } from '../payments/payment.entity';
import { PaymentProvider } from '../payments/payment-provider';
import { type BillingDetails, Invoice } from './invoice.entity';
import type { InvoiceView, PayInvoiceDto } from './invoice.dto';

const LIST_LIMIT = 100;

@Injectable()
export class InvoicesService {
  constructor(
    @InjectDataSource('billing') private readonly db: DataSource,
    @Inject(Outbox) private readonly outbox: Outbox,
    private readonly provider: PaymentProvider,
    private readonly events: SecurityEvents,
    private readonly fields: FieldEncryption,
  ) {}

  /**
   * Opens the invoices of new orders with one insert, inside the inbox transaction of their
   * events; an order that has an invoice already (e.g. created void by a cancellation that
   * came first) keeps it. Each invoice opened is recorded in the context of its own event.
   */
  async openFor(
    tx: EntityManager,
    orders: ReadonlyArray<InboxBatchItem<OrderCreatedEvent>>,
  ): Promise<void> {
    const opened = await tx
      .createQueryBuilder()
      .insert()
      .into(Invoice)
      .values(
        orders.map(({ item: order }) => ({
          id: randomUUID(),
          orderId: order.orderId,
          customerId: order.customerId,
          amountCents: order.totalCents,
          currency: order.currency,
          status: 'open' as const,
          paymentReference: null,
          paidAt: null,
        })),
      )
      .orIgnore()
      .returning('id, order_id')
      .execute();
    const invoiceOf = new Map(
      (opened.raw as Array<{ id: string; order_id: string }>).map((row) => [row.order_id, row.id]),
    );
    for (const { item: order, within } of orders) {
      const invoiceId = invoiceOf.get(order.orderId);
      if (!invoiceId) continue;
      invoiceOf.delete(order.orderId);
      await within(() =>
        this.events.recordIn(tx, {
          type: 'invoice.opened',
          outcome: 'allowed',
          service: 'billing',
          resourceType: 'invoice',
          resourceId: invoiceId,
          details: { orderId: order.orderId, amountCents: order.totalCents },
        }),
      );
    }
  }

  /** Voids an order's invoice unless it is paid; creates it void if it has not arrived yet. */
  async voidFor(request: VoidInvoiceRequest): Promise<'void' | 'paid'> {
    return this.db.transaction(async (tx) => {
      const invoice = await tx.findOne(Invoice, {
        where: { orderId: request.orderId },
        lock: { mode: 'pessimistic_write' },
      });
      if (!invoice) {
        await tx.insert(Invoice, {
          id: randomUUID(),
          orderId: request.orderId,
          customerId: request.customerId,
          amountCents: request.totalCents,
          currency: request.currency,
          status: 'void',
          paymentReference: null,
          paidAt: null,
        });
        return 'void';
      }
      if (invoice.customerId !== request.customerId) {
        throw new Error('void request names another customer than the invoice');
      }
      if (invoice.status === 'paid') return 'paid';
      if (invoice.status === 'open')
        await tx.update(Invoice, { id: invoice.id }, { status: 'void' });
      return 'void';
    });
  }

  async list(actor: Actor, orderId?: string): Promise<InvoiceView[]> {
    const customerId = ownerScope(actor);
    const invoices = await this.db.getRepository(Invoice).find({
      where: { ...(customerId ? { customerId } : {}), ...(orderId ? { orderId } : {}) },
      order: { createdAt: 'DESC' },
      take: LIST_LIMIT,
    });
    return invoices.map(view);
  }

  async get(actor: Actor, invoiceId: string): Promise<InvoiceView> {
    const invoice = await this.db.getRepository(Invoice).findOneBy({ id: invoiceId });
    return view(this.accessible(actor, invoice, invoiceId));
  }

  /**
   * Pays an invoice once. The invoice row is locked for the whole attempt, so concurrent
   * attempts queue; a retry with the same key gets the stored answer and charges nothing.
   * The customer's `Idempotency-Key` is locked first: one key sent at once for two invoices
   * would otherwise lock two rows, charge twice, and fail the second insert on the key's
   * unique constraint after its charge.
   */
  async pay(
    actor: Actor,
    invoiceId: string,
    input: PayInvoiceDto,
    idempotencyKey: string,
  ): Promise<InvoiceView> {
    const requestHash = createHash('sha256')
      .update(JSON.stringify([invoiceId, input.paymentMethod.token]))
      .digest('hex');

    const { status, body } = await this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
        `portcullis:payment-key:${actor.id}:${idempotencyKey}`,
      ]);
      const invoice = await tx.findOne(Invoice, {
        where: { id: invoiceId },
        lock: { mode: 'pessimistic_write' },
      });
      const owned = this.accessible(actor, invoice, invoiceId);
      if (owned.customerId !== actor.id) throw new NotFoundException('invoice not found');

      const earlier = await tx.findOneBy(Payment, { customerId: actor.id, idempotencyKey });
      if (earlier) {
        if (earlier.requestHash !== requestHash) {
          throw new UnprocessableEntityException([
            'Idempotency-Key was already used for another request',
          ]);
        }
        return { status: earlier.responseStatus, body: earlier.responseBody };
      }
      if (owned.status === 'paid') throw new ConflictException('invoice is already paid');
      if (owned.status === 'void') throw new ConflictException('invoice is void');

      return this.charge(tx, owned, input, idempotencyKey, requestHash);
    });

    if (status !== Number(HttpStatus.OK)) throw new HttpException(body as object, status);
    return body as InvoiceView;
  }

  private async charge(
    tx: EntityManager,
    invoice: Invoice,
    input: PayInvoiceDto,
    idempotencyKey: string,
    requestHash: string,
  ): Promise<{ status: number; body: unknown }> {
    const result = await this.provider.charge({
      invoiceId: invoice.id,
      amountCents: invoice.amountCents,
      currency: invoice.currency,
      paymentToken: input.paymentMethod.token,
      idempotencyKey: `${invoice.id}:${idempotencyKey}`,
    });

    let status: number;
    let body: unknown;
    if (result.outcome === 'succeeded') {
      invoice.status = 'paid';
      invoice.paidAt = new Date();
      invoice.paymentReference = result.reference;
      invoice.billingDetails = billingDetailsOf(input);
      await tx.update(
        Invoice,
        { id: invoice.id },
        {
          status: 'paid',
          paidAt: invoice.paidAt,
          ...(await this.fields.sealedValues(tx, Invoice, invoice.id, {
            paymentReference: invoice.paymentReference,
            billingDetails: invoice.billingDetails,
          })),
        },
      );
      status = HttpStatus.OK;
      body = view(invoice);
      await this.outbox.enqueue(tx, 'billing.invoice.paid', {
        invoiceId: invoice.id,
        orderId: invoice.orderId,
        customerId: invoice.customerId,
        paidAt: invoice.paidAt.toISOString(),
      });
      await this.events.recordIn(tx, {
        type: 'invoice.paid',
        outcome: 'allowed',
        service: 'billing',
        resourceType: 'invoice',
        resourceId: invoice.id,
        details: { orderId: invoice.orderId, amountCents: invoice.amountCents },
      });
    } else {
      await this.events.recordIn(tx, {
        type: 'invoice.payment_declined',
        outcome: 'denied',
        service: 'billing',
        resourceType: 'invoice',
        resourceId: invoice.id,
        details: { orderId: invoice.orderId },
      });
      status = HttpStatus.PAYMENT_REQUIRED;
      body = { statusCode: status, message: 'payment was declined' };
    }

    await tx.insert(Payment, {
      id: randomUUID(),
      invoiceId: invoice.id,
      customerId: invoice.customerId,
      idempotencyKey,
      requestHash,
      outcome: result.outcome,
      responseStatus: status,
      responseBody: body as object,
    });
    return { status, body };
  }

  private accessible(actor: Actor, invoice: Invoice | null, invoiceId: string): Invoice {
    if (invoice && mayAccess(actor, invoice.customerId)) return invoice;
    // Asking for an id that does not exist is recorded too: probing for other customers'
    // invoices mostly meets ids that are not there, and the detection rules count both.
    this.events.record({
      type: 'access.denied',
      outcome: 'denied',
      reason: invoice ? 'not_owner' : 'not_found',
      resourceType: 'invoice',
      resourceId: invoiceId,
    });
    throw new NotFoundException('invoice not found');
  }
}

/** The billing details of a payment, as a plain object with only the fields given. */
function billingDetailsOf(input: PayInvoiceDto): BillingDetails | null {
  const given = input.billingDetails;
  if (!given) return null;
  const { name, addressLines, postalCode, city, country, taxId } = given;
  return Object.fromEntries(
    Object.entries({ name, addressLines, postalCode, city, country, taxId }).filter(
      ([, value]) => value !== undefined,
    ),
  ) as unknown as BillingDetails;
}

function view(invoice: Invoice): InvoiceView {
  return {
    id: invoice.id,
    orderId: invoice.orderId,
    customerId: invoice.customerId,
    status: invoice.status,
    amountCents: invoice.amountCents,
    currency: invoice.currency,
    createdAt: invoice.createdAt.toISOString(),
    paidAt: invoice.paidAt ? invoice.paidAt.toISOString() : null,
    ...(invoice.billingDetails ? { billingDetails: invoice.billingDetails } : {}),
  };
}
