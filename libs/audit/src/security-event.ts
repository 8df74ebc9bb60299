/** Outcome of a security decision. */
export type SecurityOutcome = 'allowed' | 'denied' | 'failed';

/** One security-relevant fact: who did what to which resource, and what was decided. */
export interface SecurityEvent {
  readonly type: string;
  readonly outcome: SecurityOutcome;
  readonly service?: string;
  readonly reason?: string;
  readonly actorId?: string;
  readonly clientIp?: string;
  readonly resourceType?: string;
  readonly resourceId?: string;
  readonly details?: Record<string, string | number | boolean | undefined>;
}
