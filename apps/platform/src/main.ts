import { launch } from '@portcullis/core';
import { securedHostModules } from '@portcullis/security';

import { AuthModule } from '../../auth/src/auth.module';
import { BillingModule } from '../../billing/src/billing.module';
import { OrdersModule } from '../../orders/src/orders.module';

/**
 * The one-process shape: auth, orders and billing in one process. They still share nothing
 * but the libraries, and talk only through signed messages on the in-process bus (or NATS).
 */
launch({
  name: 'platform',
  services: ['auth', 'orders', 'billing'],
  imports: () => [...securedHostModules('orders'), AuthModule, OrdersModule, BillingModule],
});
