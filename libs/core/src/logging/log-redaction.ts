/** Placeholder written in place of a redacted value. */
export const REDACTED = '[redacted]';

/**
 * Field names whose values never reach a log line, wherever they sit in a logged object (up to
 * {@link REDACTION_DEPTH} levels down): credentials, session secrets, payment tokens, keys.
 */
export const REDACTED_FIELDS = [
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
  'set-cookie',
  'password',
  'newPassword',
  'currentPassword',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'paymentToken',
  'paymentMethod',
  'secret',
  'clientSecret',
  'key',
  'privateKey',
  'apiKey',
  'x-api-key',
  'signature',
  'cardNumber',
] as const;

/** Fields that are dropped whole, not merely masked: request and response bodies. */
export const DROPPED_FIELDS = ['body', 'rawBody', 'payload'] as const;

/** How many levels of nesting below the logged object redaction reaches. */
export const REDACTION_DEPTH = 6;

const REDACTED_KEYS: ReadonlySet<string> = new Set(REDACTED_FIELDS);
const DROPPED_KEYS: ReadonlySet<string> = new Set(DROPPED_FIELDS);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

/**
 * A copy of a logged object with every {@link REDACTED_FIELDS} value replaced by
 * {@link REDACTED} and every {@link DROPPED_FIELDS} value by `[dropped]`, at any depth down to
 * {@link REDACTION_DEPTH} (deeper values are dropped too). Plain objects and arrays are walked;
 * other values (errors, dates) are left to their serializers. The input is never changed.
 *
 * One walk over the object, so a request line costs about a microsecond: pino's own `redact`
 * with a wildcard path per field and depth cost a few hundred per line when measured here.
 */
export function redactLogObject(value: Record<string, unknown>): Record<string, unknown> {
  return redactObject(value, 0);
}

function redactObject(value: Record<string, unknown>, depth: number): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    if (REDACTED_KEYS.has(key)) copy[key] = REDACTED;
    else if (DROPPED_KEYS.has(key)) copy[key] = '[dropped]';
    else copy[key] = redactValue(value[key], depth + 1);
  }
  return copy;
}

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth > REDACTION_DEPTH) return '[too deep]';
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1));
  return isPlainObject(value) ? redactObject(value, depth) : value;
}

interface RawRequest {
  method?: string;
}

interface RawResponse {
  statusCode?: number;
}

/**
 * pino serializers: a request is logged as its method only (its URL may hold ids, its headers
 * credentials, its body anything); a response as its status.
 */
export const logSerializers = {
  req: (request: RawRequest): { method?: string } => ({ method: request.method }),
  res: (response: RawResponse): { statusCode?: number } => ({ statusCode: response.statusCode }),
};
