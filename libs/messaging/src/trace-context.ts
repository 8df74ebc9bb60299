import { randomBytes } from 'node:crypto';

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/**
 * Whether a value is a W3C `traceparent` of version 00 as an envelope may carry it: lower-case
 * hex, and neither the trace id nor the span id all zeros.
 */
export function isTraceparent(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    TRACEPARENT.test(value) &&
    value.slice(3, 35) !== ZERO_TRACE_ID &&
    value.slice(36, 52) !== ZERO_SPAN_ID
  );
}

/**
 * The trace context a receiver works under: the same trace id and flags, and a span id of its
 * own, so each hop is a new span whose parent is the sender's span.
 */
export function childTraceparent(parent: string | undefined): string | undefined {
  if (!isTraceparent(parent)) return undefined;
  let spanId: string;
  do spanId = randomBytes(8).toString('hex');
  while (spanId === ZERO_SPAN_ID);
  return `${parent.slice(0, 36)}${spanId}${parent.slice(52)}`;
}

/** The current trace context when an envelope may carry it; otherwise none. */
export function sendableTraceparent(value: string | undefined): string | undefined {
  return isTraceparent(value) ? value : undefined;
}
