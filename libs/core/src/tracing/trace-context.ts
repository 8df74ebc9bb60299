import { randomFillSync } from 'node:crypto';

/** A W3C trace context: the trace, the span that made the call, and the trace flags. */
export interface TraceContext {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex digits, not all zero: the span of whoever sent the header. */
  readonly parentId: string;
  /** 2 lowercase hex digits (`01`: sampled). */
  readonly flags: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
/** Flags of a trace this service starts: not sampled, as no trace collector records it. */
const NEW_TRACE_FLAGS = '00';

/**
 * Reads a `traceparent` header of version 00. Anything else (another version, upper-case or
 * missing digits, an all-zero trace or parent id, several headers) is ignored: undefined.
 */
export function parseTraceparent(header: unknown): TraceContext | undefined {
  if (typeof header !== 'string' || header.length !== 55) return undefined;
  const match = TRACEPARENT.exec(header);
  if (!match) return undefined;
  const [, traceId, parentId, flags] = match;
  if (traceId === ZERO_TRACE_ID || parentId === ZERO_SPAN_ID) return undefined;
  return { traceId, parentId, flags };
}

/** Formats a trace context as a `traceparent` header value. */
export function formatTraceparent(trace: TraceContext): string {
  return `00-${trace.traceId}-${trace.parentId}-${trace.flags}`;
}

/**
 * The trace context of a unit of work this service starts: the caller's trace with a new span
 * id of ours, or a new trace when the caller sent none (or an invalid one).
 */
export function startSpan(incoming: TraceContext | undefined): TraceContext {
  return {
    traceId: incoming?.traceId ?? randomHex(16, ZERO_TRACE_ID),
    parentId: randomHex(8, ZERO_SPAN_ID),
    flags: incoming?.flags ?? NEW_TRACE_FLAGS,
  };
}

/** The trace id of a `traceparent` value, or undefined when it is not a valid one. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  return parseTraceparent(traceparent)?.traceId;
}

/**
 * Random bytes for trace and span ids, drawn from the CSPRNG 4 KiB at a time (one call per
 * 170 to 512 ids), as `crypto.randomUUID` does for its own: a call per id cost more CPU per
 * request under load than the rest of the tracing together. The ids identify; they guard
 * nothing.
 */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function randomHex(bytes: number, zero: string): string {
  for (;;) {
    if (poolAt + bytes > pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    const hex = pool.toString('hex', poolAt, poolAt + bytes);
    poolAt += bytes;
    if (hex !== zero) return hex;
  }
}
