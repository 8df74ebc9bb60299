import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
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
 * `<service>.audit.recorded`: one audit record leaving the service that made it. Each service
 * publishes its own type, so the sender allow-list holds; the collector also checks that the
 * record names its verified sender.
 */
export class AuditRecordedEvent {
  @IsUUID('4') id!: string;
  @IsISO8601({ strict: true }) time!: string;
  @IsIn(['auth', 'orders', 'billing']) service!: 'auth' | 'orders' | 'billing';
  @IsString() @Matches(/^[a-z0-9_.-]{1,64}$/) type!: string;
  @IsIn(['allowed', 'denied', 'failed']) outcome!: 'allowed' | 'denied' | 'failed';
  @IsOptional() @ValidateNested() @Type(() => AuditActorPayload) actor?: AuditActorPayload;
  @IsOptional()
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

/** The audit event type each service publishes. */
export function auditEventType(service: 'auth' | 'orders' | 'billing'): string {
  return `${service}.audit.recorded`;
}
