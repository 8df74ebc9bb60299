import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsISO8601, IsOptional, IsUUID, Matches, Max, Min } from 'class-validator';

const OUTCOMES = ['allowed', 'denied', 'failed'] as const;

/** Largest page of records the trail returns at once. */
export const MAX_AUDIT_PAGE = 200;

export class AuditEventsQuery {
  @ApiPropertyOptional({ example: 'access.denied', description: 'Record type' })
  @IsOptional()
  @Matches(/^[a-z0-9_.-]{1,64}$/, { message: 'type must be a record type' })
  type?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'User id of the acting user' })
  @IsOptional()
  @IsUUID('all', { message: 'actor must be a UUID' })
  actor?: string;

  @ApiPropertyOptional({ example: 'orders' })
  @IsOptional()
  @Matches(/^[a-z0-9_.-]{1,64}$/, { message: 'resourceType must be a resource type' })
  resourceType?: string;

  @ApiPropertyOptional({ description: 'Printable ASCII, as recorded ids are' })
  @IsOptional()
  @Matches(/^[\x20-\x7e]{1,128}$/, { message: 'resourceId must be printable text' })
  resourceId?: string;

  @ApiPropertyOptional({ enum: OUTCOMES })
  @IsOptional()
  @IsIn(OUTCOMES)
  outcome?: (typeof OUTCOMES)[number];

  @ApiPropertyOptional({ description: 'Correlation id of the work that caused the records' })
  @IsOptional()
  @Matches(/^[A-Za-z0-9._:-]{1,128}$/, { message: 'correlationId must be a correlation id' })
  correlationId?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'Recorded at or after' })
  @IsOptional()
  @IsISO8601({ strict: true })
  from?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'Recorded before' })
  @IsOptional()
  @IsISO8601({ strict: true })
  to?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: MAX_AUDIT_PAGE, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_AUDIT_PAGE)
  limit = 50;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    description: 'Only records before this sequence number: the `next` of the previous page',
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(Number.MAX_SAFE_INTEGER)
  before?: number;
}

export class AuditActorView {
  @ApiPropertyOptional() userId?: string;
  @ApiPropertyOptional({ type: [String] }) roles?: string[];
  @ApiPropertyOptional() sessionId?: string;
  @ApiPropertyOptional() clientIp?: string;
}

export class AuditResourceView {
  @ApiProperty() type!: string;
  @ApiPropertyOptional() id?: string;
}

export class AuditEventView {
  @ApiProperty({ description: 'Place in the chain' }) sequence!: number;
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'date-time' }) time!: string;
  @ApiProperty({ enum: ['auth', 'orders', 'billing'] }) service!: string;
  @ApiProperty() type!: string;
  @ApiProperty({ enum: OUTCOMES }) outcome!: string;
  @ApiPropertyOptional({ type: AuditActorView }) actor?: AuditActorView;
  @ApiPropertyOptional({ type: AuditResourceView }) resource?: AuditResourceView;
  @ApiProperty() correlationId!: string;
  @ApiPropertyOptional() traceparent?: string;
  @ApiPropertyOptional() reason?: string;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  details?: Record<string, unknown>;
  @ApiProperty() hash!: string;
}

export class AuditEventsPage {
  @ApiProperty({ type: AuditEventView, isArray: true, description: 'Newest first' })
  items!: AuditEventView[];
  @ApiPropertyOptional({ description: 'Pass as `before` for the next (older) page' })
  next?: number;
}

export class ChainBreakView {
  @ApiProperty() sequence!: number;
  @ApiProperty({ nullable: true, type: String }) id!: string | null;
  @ApiProperty({ enum: ['hash_mismatch', 'prev_hash_mismatch', 'sequence_gap', 'truncated'] })
  reason!: string;
}

export class ChainVerificationView {
  @ApiProperty() ok!: boolean;
  @ApiProperty({ description: 'Records checked' }) records!: number;
  @ApiPropertyOptional({ type: ChainBreakView }) firstBroken?: ChainBreakView;
}
