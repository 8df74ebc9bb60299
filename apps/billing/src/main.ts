import { launch } from '@portcullis/core';
import { securedHostModules } from '@portcullis/security';

import { BillingModule } from './billing.module';

launch({
  name: 'billing',
  services: ['billing'],
  imports: () => [...securedHostModules('billing'), BillingModule],
});
