import { launch } from '@portcullis/core';
import { securedHostModules } from '@portcullis/security';

import { AuthModule } from './auth.module';

launch({
  name: 'auth',
  services: ['auth'],
  imports: () => [...securedHostModules('auth'), AuthModule],
});
