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

/** How many levels below the logged object redaction reaches. */
export const REDACTION_DEPTH = 4;

/**
 * pino `redact` paths for every {@link REDACTED_FIELDS} and {@link DROPPED_FIELDS} name at the top level and under up to
 * {@link REDACTION_DEPTH} levels of nesting (`password`, `*.password`, `*.*.password`, ...).
 */
export function redactionPaths(): string[] {
  const paths: string[] = [];
  for (let depth = 0; depth <= REDACTION_DEPTH; depth++) {
    const prefix = '*.'.repeat(depth);
    for (const field of [...REDACTED_FIELDS, ...DROPPED_FIELDS]) {
      paths.push(`${prefix}${quoted(field)}`);
    }
  }
  return paths;
}

function quoted(field: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(field) ? field : `["${field}"]`;
}

interface RawRequest {
  method?: string;
}

interface RawResponse {
  statusCode?: number;
}

/**
 * pino serializers: a request is logged as its method only (its URL may hold ids, its headers
 * credentials, its body anything); a response as its status; bodies are dropped.
 */
export const logSerializers = {
  req: (request: RawRequest): { method?: string } => ({ method: request.method }),
  res: (response: RawResponse): { statusCode?: number } => ({ statusCode: response.statusCode }),
  ...Object.fromEntries(DROPPED_FIELDS.map((field) => [field, () => '[dropped]'])),
};
