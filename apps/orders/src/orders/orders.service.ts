import {
  BadRequestException,
  ConflictException,
  Inject,
  Injectable,
  Logger,
  NotFoundException,
  ServiceUnavailableException,
  UnprocessableEntityException,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, randomUUID } from 'node:crypto';
import { DataSource, type EntityManager } from 'typeorm';

import { SecurityEvents } from '@portcullis/audit';
import { MAX_TOTAL_CENTS } from '@portcullis/contracts';
import type { Actor } from '@portcullis/core';
import {
  MessageClient,
  MessageRequestError,
  Outbox,
  OutboxAuditSink,
  outboxWritten,
  storedOutboxRows,
} from '@portcullis/messaging';
import { mayAccess, ownerScope } from '@portcullis/security';

import { Catalogue } from '../catalogue/catalogue';
import { OrderLine } from './order-line.entity';
import { OrderWriter } from './order-writer';
import { Order } from './order.entity';
import type { CreateOrderDto, OrderView } from './order.dto';

const LIST_LIMIT = 100;

@Injectable()
export class OrdersService {
  private readonly logger = new Logger(OrdersService.name);
  private readonly writer: OrderWriter;

  constructor(
    @InjectDataSource('orders') private readonly db: DataSource,
    @Inject(MessageClient) private readonly messages: MessageClient,
    @Inject(Outbox) private readonly outbox: Outbox,
    private readonly events: SecurityEvents,
    @Inject(Catalogue) private readonly catalogue: Catalogue,
    @Inject(OutboxAuditSink) private readonly audit: OutboxAuditSink,
  ) {
    this.writer = new OrderWriter(db);
  }

  /**
   * Places an order priced from the catalogue. A repeated `Idempotency-Key` returns the first:
   * the statement skips an order whose key is taken, and the order that holds the key is
   * returned (a first use, the usual case, costs no look-up).
   */
  async place(actor: Actor, input: CreateOrderDto, idempotencyKey?: string): Promise<OrderView> {
    const requestHash = hashRequest(input);
    const order = await this.price(actor, input);
    order.idempotencyKey = idempotencyKey ?? null;
    order.requestHash = idempotencyKey ? requestHash : null;

    // The order, its lines, its event and its audit record: one statement, shared with the
    // orders placed in the same turn of the event loop.
    const events = [
      this.outbox.row('orders.created', {
        orderId: order.id,
        customerId: order.customerId,
        totalCents: order.totalCents,
        currency: order.currency,
      }),
      ...this.audit.rowsOf([
        this.events.prepare({
          type: 'order.created',
          outcome: 'allowed',
          service: 'orders',
          resourceType: 'order',
          resourceId: order.id,
          details: { totalCents: order.totalCents, currency: order.currency },
        }),
      ]),
    ];
    const stored = storedOutboxRows(this.db, 'orders', events);
    if (await this.writer.write(order, stored)) {
      outboxWritten(this.db, stored);
      return view(order);
    }
    // Skipped: another order holds its key (an order without a key is never skipped).
    const winner = idempotencyKey
      ? await this.findByIdempotencyKey(actor.id, idempotencyKey, requestHash)
      : undefined;
    if (!winner) throw new Error('an order was skipped for a key that no order holds');
    return winner;
  }

  async list(actor: Actor): Promise<OrderView[]> {
    const customerId = ownerScope(actor);
    const orders = await this.db.getRepository(Order).find({
      where: customerId ? { customerId } : {},
      relations: { lines: true },
      order: { createdAt: 'DESC', lines: { lineNo: 'ASC' } },
      take: LIST_LIMIT,
    });
    return orders.map(view);
  }

  async get(actor: Actor, orderId: string): Promise<OrderView> {
    return view(await this.loadAccessible(actor, orderId));
  }

  /**
   * Cancels an unpaid order. Billing voids the invoice first, under its own lock, so an
   * order can never end up both cancelled and paid.
   */
  async cancel(actor: Actor, orderId: string): Promise<OrderView> {
    const order = await this.loadAccessible(actor, orderId);
    if (order.status === 'cancelled') return view(order);
    if (order.status === 'paid') throw new ConflictException('order is already paid');

    const outcome = await this.voidInvoice(order);
    if (outcome === 'paid') throw new ConflictException('order is already paid');

    await this.db.transaction(async (tx) => {
      const result = await tx.update(
        Order,
        { id: order.id, status: 'pending_payment' },
        { status: 'cancelled' },
      );
      if (!result.affected) return;
      await this.outbox.enqueue(tx, 'orders.cancelled', {
        orderId: order.id,
        customerId: order.customerId,
      });
      await this.events.recordIn(tx, {
        type: 'order.cancelled',
        outcome: 'allowed',
        service: 'orders',
        resourceType: 'order',
        resourceId: order.id,
      });
    });
    return this.get(actor, orderId);
  }

  /** Applies `billing.invoice.paid` inside the inbox transaction, for the order's customer only. */
  async markPaid(tx: EntityManager, orderId: string, customerId: string): Promise<void> {
    const result = await tx.update(
      Order,
      { id: orderId, customerId, status: 'pending_payment' },
      { status: 'paid' },
    );
    if (!result.affected) {
      this.logger.warn({ msg: 'invoice paid for an order not awaiting payment', orderId });
      return;
    }
    await this.events.recordIn(tx, {
      type: 'order.paid',
      outcome: 'allowed',
      service: 'orders',
      resourceType: 'order',
      resourceId: orderId,
    });
  }

  private async price(actor: Actor, input: CreateOrderDto): Promise<Order> {
    const skus = input.items.map((item) => item.sku);
    const duplicates = skus.filter((sku, index) => skus.indexOf(sku) !== index);
    if (duplicates.length > 0) {
      throw new BadRequestException([
        `items must not repeat a sku: ${[...new Set(duplicates)].join(', ')}`,
      ]);
    }

    const wanted = new Set(skus);
    const products = (await this.catalogue.active()).filter((product) => wanted.has(product.sku));
    const bySku = new Map(products.map((product) => [product.sku, product]));
    const unknown = input.items.flatMap((item, index) =>
      bySku.has(item.sku) ? [] : [`items.${index}.sku is not in the catalogue`],
    );
    if (unknown.length > 0) throw new UnprocessableEntityException(unknown);
    const currencies = new Set(products.map((product) => product.currency));
    if (currencies.size > 1) {
      throw new UnprocessableEntityException(['items must all be priced in one currency']);
    }

    const orderId = randomUUID();
    const lines = input.items.map((item, index) => {
      const product = bySku.get(item.sku)!;
      return Object.assign(new OrderLine(), {
        orderId,
        lineNo: index + 1,
        sku: product.sku,
        name: product.name,
        unitPriceCents: product.unitPriceCents,
        quantity: item.quantity,
        lineTotalCents: product.unitPriceCents * item.quantity,
      });
    });
    const totalCents = lines.reduce((sum, line) => sum + line.lineTotalCents, 0);
    if (!Number.isSafeInteger(totalCents) || totalCents > MAX_TOTAL_CENTS) {
      throw new UnprocessableEntityException([
        `items: the total must not exceed ${MAX_TOTAL_CENTS}`,
      ]);
    }

    const now = new Date();
    return Object.assign(new Order(), {
      id: orderId,
      customerId: actor.id,
      status: 'pending_payment' as const,
      totalCents,
      currency: products[0].currency,
      lines,
      createdAt: now,
      updatedAt: now,
    });
  }

  private async findByIdempotencyKey(
    customerId: string,
    idempotencyKey: string,
    requestHash: string,
  ): Promise<OrderView | undefined> {
    const order = await this.db.getRepository(Order).findOne({
      where: { customerId, idempotencyKey },
      relations: { lines: true },
      order: { lines: { lineNo: 'ASC' } },
    });
    if (!order) return undefined;
    if (order.requestHash !== requestHash) {
      throw new UnprocessableEntityException([
        'Idempotency-Key was already used for another request',
      ]);
    }
    return view(order);
  }

  private async loadAccessible(actor: Actor, orderId: string): Promise<Order> {
    const order = await this.db.getRepository(Order).findOne({
      where: { id: orderId },
      relations: { lines: true },
      order: { lines: { lineNo: 'ASC' } },
    });
    if (order && mayAccess(actor, order.customerId)) return order;
    // Asking for an id that does not exist is recorded too: probing for other customers'
    // orders mostly meets ids that are not there, and the detection rules count both.
    this.events.record({
      type: 'access.denied',
      outcome: 'denied',
      reason: order ? 'not_owner' : 'not_found',
      resourceType: 'order',
      resourceId: orderId,
    });
    throw new NotFoundException('order not found');
  }

  private async voidInvoice(order: Order): Promise<'void' | 'paid'> {
    try {
      const reply = await this.messages.request('billing.invoice.void', {
        orderId: order.id,
        customerId: order.customerId,
        totalCents: order.totalCents,
        currency: order.currency,
      });
      return reply.outcome;
    } catch (error) {
      if (error instanceof MessageRequestError) {
        throw new ServiceUnavailableException('billing is unavailable; try again shortly');
      }
      throw error;
    }
  }
}

function hashRequest(input: CreateOrderDto): string {
  const canonical = input.items.map((item) => [item.sku, item.quantity]);
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

function view(order: Order): OrderView {
  return {
    id: order.id,
    customerId: order.customerId,
    status: order.status,
    lines: order.lines.map(({ sku, name, unitPriceCents, quantity, lineTotalCents }) => ({
      sku,
      name,
      unitPriceCents,
      quantity,
      lineTotalCents,
    })),
    totalCents: order.totalCents,
    currency: order.currency,
    createdAt: order.createdAt.toISOString(),
    updatedAt: order.updatedAt.toISOString(),
  };
}
