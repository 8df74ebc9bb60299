/** Deepest nesting of objects and arrays accepted in a JSON request body. */
export const MAX_JSON_DEPTH = 32;
/**
 * Most object members (keys) accepted in one JSON request body, all objects together. The
 * largest valid body, an order of 50 lines, has about 100; validating thousands of unknown
 * keys costs tens of milliseconds of CPU, which a client could spend on the server at will.
 */
export const MAX_JSON_KEYS = 1000;

/** Error codes of refused JSON bodies, mapped to client messages by the error filter. */
export const JSON_BODY_ERRORS = {
  PORTCULLIS_JSON_TOO_DEEP: `request body is nested more than ${MAX_JSON_DEPTH} levels deep`,
  PORTCULLIS_JSON_TOO_MANY_KEYS: `request body has more than ${MAX_JSON_KEYS} keys`,
  PORTCULLIS_JSON_DUPLICATE_KEY: 'request body must not repeat a key within one object',
  PORTCULLIS_JSON_FORBIDDEN_KEY: 'request body must not use __proto__ or constructor as a key',
  PORTCULLIS_JSON_LONE_SURROGATE: 'request body must be valid Unicode (no unpaired \\u surrogate)',
} as const;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor']);
/** A UTF-16 surrogate without its partner: only a `\u` escape in JSON can produce one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

/** An error Fastify turns into a 4xx; `code` selects the message the client sees. */
class BodyError extends Error {
  readonly statusCode = 400;

  constructor(readonly code: string) {
    super(code);
    this.name = 'BodyError';
  }
}

/**
 * Parses a JSON request body, refusing before any parse a body nested deeper than
 * {@link MAX_JSON_DEPTH} (a recursive walk over it could exhaust the stack) or holding more
 * than {@link MAX_JSON_KEYS} keys (validating each costs CPU), refusing a body that repeats a
 * key within one object, refusing any
 * `__proto__` or `constructor` key at any depth, however it is escaped, and refusing any key or
 * string holding an unpaired surrogate (`"\ud800"`): such a string is no Unicode text, and
 * validators that encode it (`encodeURI` in `isEmail`) throw instead of answering.
 */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw new BodyError('FST_ERR_CTP_EMPTY_JSON_BODY');
  const shape = jsonShape(text);
  if (shape.depth > MAX_JSON_DEPTH) throw new BodyError('PORTCULLIS_JSON_TOO_DEEP');
  if (shape.keys > MAX_JSON_KEYS) throw new BodyError('PORTCULLIS_JSON_TOO_MANY_KEYS');
  const mayHoldForbiddenKey =
    text.includes('__proto__') || text.includes('constructor') || text.includes('\\u');
  let value: unknown;
  try {
    value = mayHoldForbiddenKey ? JSON.parse(text, refuseForbiddenKeys) : JSON.parse(text);
  } catch (error) {
    if (error instanceof BodyError) throw error;
    throw new BodyError('FST_ERR_CTP_INVALID_JSON_BODY');
  }
  // JSON.parse keeps the last of repeated keys; a body that says two things at once is refused,
  // so that no component in front of this one can have read the other. Every member of the
  // text became a key unless it repeated one.
  if (shape.keys > 0 && keysIn(value) < shape.keys) {
    throw new BodyError('PORTCULLIS_JSON_DUPLICATE_KEY');
  }
  return value;
}

/** The number of keys of every object in a parsed JSON value, all levels together. */
function keysIn(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let count = 0;
  if (Array.isArray(value)) {
    for (const item of value) count += keysIn(item);
    return count;
  }
  for (const key in value) {
    count += 1 + keysIn((value as Record<string, unknown>)[key]);
  }
  return count;
}

function refuseForbiddenKeys(key: string, value: unknown): unknown {
  if (FORBIDDEN_KEYS.has(key)) throw new BodyError('PORTCULLIS_JSON_FORBIDDEN_KEY');
  if (LONE_SURROGATE.test(key) || (typeof value === 'string' && LONE_SURROGATE.test(value))) {
    throw new BodyError('PORTCULLIS_JSON_LONE_SURROGATE');
  }
  return value;
}

/** The deepest nesting of `{` and `[` outside strings; stops counting once past the limit. */
export function nestingDepth(text: string): number {
  return jsonShape(text).depth;
}

/**
 * In one pass over the text, without parsing it: the deepest nesting of `{` and `[`, and the
 * number of object members (a `:` outside strings is one). Stops counting once past either limit.
 */
export function jsonShape(text: string): { depth: number; keys: number } {
  let depth = 0;
  let deepest = 0;
  let keys = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === COLON) {
      if (++keys > MAX_JSON_KEYS) break;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > MAX_JSON_DEPTH) break;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return { depth: deepest, keys };
}
