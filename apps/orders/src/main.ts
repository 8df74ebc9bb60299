import { launch } from '@portcullis/core';
import { securedHostModules } from '@portcullis/security';

import { OrdersModule } from './orders.module';

launch({
  name: 'orders',
  services: ['orders'],
  imports: () => [...securedHostModules('orders'), OrdersModule],
});
