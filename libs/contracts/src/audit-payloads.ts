import { createHash } from 'node:crypto';

import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  MaxLength,
  ValidateNested,
  ValidationArguments,
  registerDecorator,
} from 'class-validator';

const MAX_DETAILS = 32;

/** A flat object of at most 32 short fields whose values are strings, numbers, booleans or null. */
function IsFlatDetails(): PropertyDecorator {
  return (target, property) => {
    registerDecorator({
      name: 'isFlatDetails',
      target: target.constructor,
      propertyName: String(property),
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
          const entries = Object.entries(value);
          return (
            entries.length <= MAX_DETAILS &&
            entries.every(
              ([key, field]) =>
                key.length <= 64 &&
                (field === null ||
                  typeof field === 'boolean' ||
                  (typeof field === 'number' && Number.isFinite(field)) ||
                  (typeof field === 'string' && field.length <= 256)),
            )
          );
        },
        defaultMessage: (args?: ValidationArguments) =>
          `${args?.property ?? 'details'} must be a flat object of short plain values`,
      },
    });
  };
}

export class AuditActorPayload {
  @IsOptional() @IsString() @MaxLength(128) userId?: string;
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(8)
  @Matches(/^[a-z]{1,32}$/, { each: true })
  roles?: string[];
  @IsOptional() @IsString() @MaxLength(128) sessionId?: string;
  @IsOptional() @IsString() @MaxLength(64) clientIp?: string;
}

export class AuditResourcePayload {
  @IsString() @MaxLength(64) type!: string;
  @IsOptional() @IsString() @MaxLength(128) id?: string;
}

/**
 * One audit record as it leaves the service that made it. Until batching, each
 * `<service>.audit.recorded` message carried one of these as its whole payload (the record id
 * being the message id); receivers still accept that form (see {@link AuditRecordedEvent}).
 */
export class AuditRecordPayload {
  @IsUUID('4') id!: string;
  @IsISO8601({ strict: true }) time!: string;
  @IsIn(['auth', 'orders', 'billing']) service!: 'auth' | 'orders' | 'billing';
  @IsString() @Matches(/^[a-z0-9_.-]{1,64}$/) type!: string;
  @IsIn(['allowed', 'denied', 'failed']) outcome!: 'allowed' | 'denied' | 'failed';
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => AuditActorPayload)
  actor?: AuditActorPayload;
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => AuditResourcePayload)
  resource?: AuditResourcePayload;
  @Matches(/^[A-Za-z0-9._:-]{1,128}$/) correlationId!: string;
  @IsOptional()
  @Matches(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/)
  traceparent?: string;
  @IsOptional() @IsString() @MaxLength(200) reason?: string;
  @IsOptional() @IsObject() @IsFlatDetails() details?: Record<
    string,
    string | number | boolean | null
  >;
}

/**
 * Bounds of one `<service>.audit.recorded` message: at most this many records, and the
 * sender keeps the records' JSON under this many bytes (NATS refuses messages above its
 * `max_payload`, 1 MiB by default).
 */
export const AUDIT_BATCH_LIMITS = { records: 500, bytes: 256 * 1024 } as const;

/**
 * `<service>.audit.recorded`: audit records leaving the service that made them, in the order
 * of the transactions that wrote them, as one signed message. Each service publishes its own type, so the sender
 * allow-list holds; the collector also checks that every record names the verified sender.
 */
export class AuditRecordedEvent {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(AUDIT_BATCH_LIMITS.records)
  // Without it an array of arrays passes: class-validator checks nested arrays element-wise.
  @IsObject({ each: true })
  @ValidateNested({ each: true })
  @Type(() => AuditRecordPayload)
  records!: AuditRecordPayload[];
}

/**
 * The message id of a batch of audit records: a UUID (version 4 layout) made from the SHA-256
 * of the record ids in order. The same records sent again get the same id, so the stream's
 * duplicate window drops a repeat; a batch of other records never shares it.
 */
export function auditBatchMessageId(recordIds: readonly string[]): string {
  const digest = createHash('sha256').update('portcullis.audit.batch\n');
  for (const id of recordIds) digest.update(id).update('\n');
  const bytes = digest.digest().subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The audit event type each service publishes. */
export function auditEventType(service: 'auth' | 'orders' | 'billing'): string {
  return `${service}.audit.recorded`;
}
