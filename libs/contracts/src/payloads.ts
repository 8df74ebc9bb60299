import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';

/**
 * The largest amount of one order or invoice, in minor units: a total the order service refuses
 * to exceed, and that message receivers refuse in a payload.
 */
export const MAX_TOTAL_CENTS = 100_000_000_000;

/** `orders.created`: a customer placed an order; billing opens its invoice. */
export class OrderCreatedEvent {
  @IsUUID('4') orderId!: string;
  @IsUUID('4') customerId!: string;
  @IsInt() @Min(1) @Max(MAX_TOTAL_CENTS) totalCents!: number;
  @Matches(/^[A-Z]{3}$/) currency!: string;
}

/** `orders.cancelled`: an unpaid order was cancelled. */
export class OrderCancelledEvent {
  @IsUUID('4') orderId!: string;
  @IsUUID('4') customerId!: string;
}

/** `billing.invoice.paid`: an invoice was paid; orders marks its order paid. */
export class InvoicePaidEvent {
  @IsUUID('4') invoiceId!: string;
  @IsUUID('4') orderId!: string;
  @IsUUID('4') customerId!: string;
  @IsISO8601({ strict: true }) paidAt!: string;
}

/** `billing.invoice.void`: orders asks billing to void an order's invoice before cancelling. */
export class VoidInvoiceRequest {
  @IsUUID('4') orderId!: string;
  @IsUUID('4') customerId!: string;
  @IsInt() @Min(1) @Max(MAX_TOTAL_CENTS) totalCents!: number;
  @Matches(/^[A-Z]{3}$/) currency!: string;
}

export class VoidInvoiceReply {
  @IsIn(['void', 'paid']) outcome!: 'void' | 'paid';
}

/** `auth.keys.query`: a service asks auth for the public keys that sign access tokens. */
export class TokenKeysQuery {
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9_-]{1,128}$/) kid?: string;
}

export class PublicJwk {
  @IsIn(['RSA']) kty!: 'RSA';
  @IsString() kid!: string;
  @IsIn(['sig']) use!: 'sig';
  @IsIn(['RS256']) alg!: 'RS256';
  @IsString() n!: string;
  @IsString() e!: string;
}

export class TokenKeysReply {
  @ValidateNested({ each: true })
  @ArrayMaxSize(16)
  @Type(() => PublicJwk)
  keys!: PublicJwk[];
}

export const REVOCATION_REASONS = [
  'logout',
  'refresh_reuse',
  'admin',
  'role_change',
  'abuse',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/** `auth.session.revoked`: tokens of these sessions must be refused from now on. */
export class SessionsRevokedEvent {
  @IsUUID('4') accountId!: string;
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @IsUUID('4', { each: true })
  sessionIds!: string[];
  @IsIn(REVOCATION_REASONS) reason!: RevocationReason;
  /** Until when a token of these sessions could still be unexpired. */
  @IsISO8601({ strict: true }) relevantUntil!: string;
}

/** `auth.keys.rotated`: the token signing keys changed; refresh the cached public keys. */
export class TokenKeysRotatedEvent {
  @IsString() @Matches(/^[A-Za-z0-9_-]{1,128}$/) activeKid!: string;
  @IsArray() @ArrayMaxSize(16) @IsString({ each: true }) withdrawnKids!: string[];
}

/** `auth.revocations.query`: a service (re)learns the revocations that still matter. */
export class RevocationsQuery {
  /** Only revocations made after this instant; all that still matter when absent. */
  @IsOptional() @IsISO8601({ strict: true }) since?: string;
}

export class RevokedSession {
  @IsUUID('4') sessionId!: string;
  @IsISO8601({ strict: true }) relevantUntil!: string;
}

export class RevocationsReply {
  @ValidateNested({ each: true })
  @ArrayMaxSize(100_000)
  @Type(() => RevokedSession)
  sessions!: RevokedSession[];
}
