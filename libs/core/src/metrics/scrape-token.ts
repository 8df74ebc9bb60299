import { Inject, Injectable } from '@nestjs/common';
import { hash, timingSafeEqual } from 'node:crypto';

import { SECRET_NAMES, type SecretsProvider } from '@portcullis/crypto';

import { SECRETS } from '../config/tokens';

/**
 * The bearer token Prometheus presents to `GET /metrics`, from the secret `metrics.token`.
 * Without that secret only an admin's access token opens the route.
 */
@Injectable()
export class ScrapeToken {
  constructor(@Inject(SECRETS) private readonly secrets: SecretsProvider) {}

  /** Whether `candidate` is the scrape token; compared in constant time, never logged. */
  accepts(candidate: string | undefined): boolean {
    if (candidate === undefined || candidate === '') return false;
    const name = SECRET_NAMES.metricsToken;
    if (!this.secrets.has(name)) return false;
    const expected = this.secrets.read(name).trim();
    if (expected === '') return false;
    // Digests of equal length, so neither the comparison nor its length reveals the token.
    return timingSafeEqual(digest(candidate), digest(expected));
  }
}

function digest(value: string): Buffer {
  return hash('sha256', value, 'buffer');
}
