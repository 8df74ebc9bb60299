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
import { type InboxStatementEffect, Outbox, OutboxAuditSink } from '@portcullis/messaging';
import { mayAccess, ownerScope } from '@portcullis/security';

import { Payment } from '../payments/payment.entity';
import { PaymentProvider } from '../payments/payment-provider';
import { type BillingDetails, Invoice, type InvoiceStatus } from './invoice.entity';
import type { InvoiceView, PayInvoiceDto } from './invoice.dto';

const LIST_LIMIT = 100;

/**
 * New orders' invoices, opened in the inbox's statement for their events: an order's invoice
 * is inserted only if its event is new to the inbox, and one the order has already (created
 * void by a cancellation that came first) is kept. `effect` lists the events whose invoice was
 * opened. Parameters from `$first`: the events' ids, then the invoices' columns.
 */
function openInvoicesClauses(first: number): string {
  const [messages, ids, orders, customers, amounts, currencies] = [0, 1, 2, 3, 4, 5].map(
    (n) => `$${first + n}`,
  );
  return `opened AS (
       INSERT INTO billing.invoices (id, order_id, customer_id, amount_cents, currency, status)
       SELECT i.id, i.order_id, i.customer_id, i.amount_cents, i.currency, 'open'
         FROM unnest(${messages}::uuid[], ${ids}::uuid[], ${orders}::uuid[], ${customers}::uuid[],
                     ${amounts}::bigint[], ${currencies}::char(3)[])
           AS i(message_id, id, order_id, customer_id, amount_cents, currency)
        WHERE i.message_id IN (SELECT message_id FROM recorded)
       ON CONFLICT DO NOTHING
       RETURNING id),
     effect AS (
       SELECT i.message_id FROM unnest(${messages}::uuid[], ${ids}::uuid[]) AS i(message_id, id)
        WHERE i.id IN (SELECT id FROM opened))`;
}

/** An invoice to open for an order, under the id chosen for it. */
export interface InvoiceOpening {
  readonly invoiceId: string;
  readonly order: OrderCreatedEvent;
}

/** An invoice row as {@link InvoicesService.list} reads it. */
interface InvoiceRow {
  id: string;
  order_id: string;
  customer_id: string;
  amount_cents: string;
  currency: string;
  status: InvoiceStatus;
  billing_details_sealed: Buffer | null;
  created_at: Date | string;
  paid_at: Date | string | null;
}

@Injectable()
export class InvoicesService {
  constructor(
    @InjectDataSource('billing') private readonly db: DataSource,
    @Inject(Outbox) private readonly outbox: Outbox,
    private readonly provider: PaymentProvider,
    private readonly events: SecurityEvents,
    private readonly fields: FieldEncryption,
    @Inject(OutboxAuditSink) private readonly audit: OutboxAuditSink,
  ) {}

  /**
   * Opens the invoices of new orders, in the inbox's statement for their events (one insert
   * for all of them), each recorded as `invoice.opened` in the context of its own event.
   */
  readonly opening: InboxStatementEffect<InvoiceOpening> = {
    clauses: openInvoicesClauses,
    parameters: (items) => [
      items.map(({ messageId }) => messageId),
      items.map(({ item }) => item.invoiceId),
      items.map(({ item }) => item.order.orderId),
      items.map(({ item }) => item.order.customerId),
      items.map(({ item }) => item.order.totalCents),
      items.map(({ item }) => item.order.currency),
    ],
    rowsOf: ({ invoiceId, order }) =>
      this.audit.rowsOf([
        this.events.draft({
          type: 'invoice.opened',
          outcome: 'allowed',
          service: 'billing',
          resourceType: 'invoice',
          resourceId: invoiceId,
          details: { orderId: order.orderId, amountCents: order.totalCents },
        }),
      ]),
  };

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

  /**
   * The actor's invoices (every invoice for an admin), optionally of one order. Read with one
   * query of its own: this is what a client polls while it waits for an order's invoice, and
   * TypeORM's `find` cost about 0.25 ms of CPU more per call than the query it sends.
   */
  async list(actor: Actor, orderId?: string): Promise<InvoiceView[]> {
    const customerId = ownerScope(actor);
    const conditions: string[] = [];
    const parameters: unknown[] = [];
    if (customerId) conditions.push(`customer_id = $${parameters.push(customerId)}`);
    if (orderId) conditions.push(`order_id = $${parameters.push(orderId)}`);
    const rows = await this.db.query<InvoiceRow[]>(
      `SELECT id, order_id, customer_id, amount_cents, currency, status, billing_details_sealed,
              created_at, paid_at
         FROM billing.invoices
        ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
        ORDER BY created_at DESC
        LIMIT ${LIST_LIMIT}`,
      parameters,
    );
    return Promise.all(rows.map(async (row) => view(await this.invoiceOf(row))));
  }

  private async invoiceOf(row: InvoiceRow): Promise<Invoice> {
    const invoice = Object.assign(new Invoice(), {
      id: row.id,
      orderId: row.order_id,
      customerId: row.customer_id,
      amountCents: Number(row.amount_cents),
      currency: row.currency,
      status: row.status,
      billingDetailsSealed: row.billing_details_sealed,
      // Dates as the driver gives them (pg: Date; the embedded database: Date or text).
      createdAt: new Date(row.created_at),
      paidAt: row.paid_at === null ? null : new Date(row.paid_at),
    });
    return this.fields.openSealed(this.db.manager, Invoice, invoice);
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
