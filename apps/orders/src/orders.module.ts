import { Module } from '@nestjs/common';

import { DatabaseModule } from '@portcullis/core';
import {
  InboxRecord,
  MessagingModule,
  OutboxRecord,
  messagingTablesMigration,
  outboxPublishedRowsMigration,
  outboxTraceContextMigration,
} from '@portcullis/messaging';

import { Catalogue } from './catalogue/catalogue';
import { CatalogueController } from './catalogue/catalogue.controller';
import { Product } from './catalogue/product.entity';
import { CreateOrders1764806500000 } from './migrations/1764806500000-create-orders';
import { SeedCatalogue1764806500001 } from './migrations/1764806500001-seed-catalogue';
import { BillingEventsHandler } from './orders/billing-events.handler';
import { OrderLine } from './orders/order-line.entity';
import { Order } from './orders/order.entity';
import { OrdersController } from './orders/orders.controller';
import { OrdersService } from './orders/orders.service';

/** The catalogue and customers' orders. */
@Module({
  imports: [
    DatabaseModule.forService({
      service: 'orders',
      entities: [Product, Order, OrderLine, OutboxRecord, InboxRecord],
      migrations: [
        CreateOrders1764806500000,
        SeedCatalogue1764806500001,
        messagingTablesMigration('orders'),
        outboxTraceContextMigration('orders'),
        outboxPublishedRowsMigration('orders'),
      ],
    }),
    MessagingModule.forService('orders'),
  ],
  controllers: [CatalogueController, OrdersController, BillingEventsHandler],
  providers: [Catalogue, OrdersService],
})
export class OrdersModule {}
