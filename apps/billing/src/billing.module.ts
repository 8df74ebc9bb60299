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

import { Invoice } from './invoices/invoice.entity';
import { InvoicesController } from './invoices/invoices.controller';
import { InvoicesService } from './invoices/invoices.service';
import { OrderEventsHandler } from './invoices/order-events.handler';
import { CreateBilling1764806600000 } from './migrations/1764806600000-create-billing';
import { sealPaymentData } from './migrations/1764806900000-seal-payment-data';
import { Payment } from './payments/payment.entity';
import { PaymentProvider, SimulatedPaymentProvider } from './payments/payment-provider';

/** Invoices and payments. */
@Module({
  imports: [
    DatabaseModule.forService({
      service: 'billing',
      entities: [Invoice, Payment, OutboxRecord, InboxRecord],
      migrations: [
        CreateBilling1764806600000,
        messagingTablesMigration('billing'),
        outboxTraceContextMigration('billing'),
        outboxPublishedRowsMigration('billing'),
      ],
      sealingMigrations: (encryption) => [sealPaymentData(encryption)],
    }),
    MessagingModule.forService('billing'),
  ],
  controllers: [InvoicesController, OrderEventsHandler],
  providers: [InvoicesService, { provide: PaymentProvider, useClass: SimulatedPaymentProvider }],
})
export class BillingModule {}
