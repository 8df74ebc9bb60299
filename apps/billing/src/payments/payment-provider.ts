import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';

export type ChargeResult =
  | { readonly outcome: 'succeeded'; readonly reference: string }
  | { readonly outcome: 'declined'; readonly reason: string };

export interface ChargeRequest {
  readonly invoiceId: string;
  readonly amountCents: number;
  readonly currency: string;
  /** A provider token standing for the card; card numbers never reach this code. */
  readonly paymentToken: string;
  /** Passed to the provider so that it, too, charges at most once per attempt. */
  readonly idempotencyKey: string;
}

/** The boundary to a payment provider. */
export abstract class PaymentProvider {
  abstract charge(request: ChargeRequest): Promise<ChargeResult>;
}

/**
 * A provider for development and tests: `tok_visa` succeeds, every other token
 * (`tok_declined` among them) is declined.
 */
@Injectable()
export class SimulatedPaymentProvider extends PaymentProvider {
  charge(request: ChargeRequest): Promise<ChargeResult> {
    if (request.paymentToken === 'tok_visa') {
      return Promise.resolve({ outcome: 'succeeded', reference: `sim_ch_${randomUUID()}` });
    }
    const reason = request.paymentToken === 'tok_declined' ? 'card_declined' : 'unknown_token';
    return Promise.resolve({ outcome: 'declined', reason });
  }
}
