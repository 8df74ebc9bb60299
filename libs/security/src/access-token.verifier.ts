import { type KeyObject, verify } from 'node:crypto';

/** Why an access token was refused; recorded with the security event. */
export type TokenRejectionReason =
  | 'missing'
  | 'malformed'
  | 'unexpected_algorithm'
  | 'unknown_key'
  | 'bad_signature'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'expired'
  | 'not_yet_valid'
  | 'too_old';

export class TokenRejectedError extends Error {
  constructor(readonly reason: TokenRejectionReason) {
    super(`access token rejected: ${reason}`);
    this.name = 'TokenRejectedError';
  }
}

/** What every accepted token must say about where it comes from and how long it lives. */
export interface AccessTokenRules {
  readonly issuer: string;
  readonly audience: string;
  /** The longest lifetime a token may claim (`exp - iat`), in seconds. */
  readonly maxLifetimeSeconds: number;
  /** Allowed disagreement between the issuer's clock and ours, in seconds. */
  readonly clockToleranceSeconds: number;
}

/** Claims of a verified token; their meaning (subject, session, roles) is the caller's to check. */
export type AccessTokenClaims = Readonly<Record<string, unknown>>;

const MAX_TOKEN_CHARS = 8192;
const MAX_REMEMBERED_HEADERS = 64;
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Verifies compact RS256 access tokens with one `crypto.verify` and a handful of claim checks,
 * so that a token the cache has not seen costs little more than its signature check.
 *
 * Only RS256 is accepted, whatever the header asks for; the key comes from the caller (auth's
 * published keys, chosen by `kid`), never from the token. Signatures must be in canonical
 * base64url, so one signature cannot be spelled in several ways.
 */
export class AccessTokenVerifier {
  private readonly acceptedHeaders = new Set<string>();

  constructor(
    private readonly rules: AccessTokenRules,
    private readonly nowSeconds: () => number = () => Date.now() / 1000,
  ) {}

  verify(token: string, key: KeyObject): AccessTokenClaims {
    if (token.length > MAX_TOKEN_CHARS) throw new TokenRejectedError('malformed');
    const firstDot = token.indexOf('.');
    const lastDot = token.lastIndexOf('.');
    if (firstDot < 1 || lastDot <= firstDot + 1 || lastDot === token.length - 1) {
      throw new TokenRejectedError('malformed');
    }
    this.checkHeader(token.slice(0, firstDot));

    const signature = decodeSignature(token.slice(lastDot + 1), key);
    // UTF-8, not latin1: latin1 would map characters 256 apart onto one byte, letting a
    // changed text pass the signature and then decode to other claims.
    const signingInput = Buffer.from(token.slice(0, lastDot), 'utf8');
    if (!verify('sha256', signingInput, key, signature)) {
      throw new TokenRejectedError('bad_signature');
    }

    const claims = decodeSegment(token.slice(firstDot + 1, lastDot));
    this.checkClaims(claims);
    return claims;
  }

  /**
   * Every token signed by one key carries the same header, so a header that passed once is
   * remembered by its exact text and not parsed again. The signature still covers it.
   */
  private checkHeader(text: string): void {
    if (this.acceptedHeaders.has(text)) return;
    const header = decodeSegment(text);
    if (header.alg !== 'RS256') throw new TokenRejectedError('unexpected_algorithm');
    if (header.crit !== undefined) throw new TokenRejectedError('malformed');
    if (this.acceptedHeaders.size >= MAX_REMEMBERED_HEADERS) this.acceptedHeaders.clear();
    this.acceptedHeaders.add(text);
  }

  private checkClaims(claims: AccessTokenClaims): void {
    const { issuer, audience, maxLifetimeSeconds, clockToleranceSeconds: skew } = this.rules;
    const { iss, aud, exp, nbf, iat } = claims;
    if (iss !== issuer) throw new TokenRejectedError('wrong_issuer');
    if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) {
      throw new TokenRejectedError('wrong_audience');
    }
    if (!isSeconds(exp) || !isSeconds(iat)) throw new TokenRejectedError('malformed');
    if (nbf !== undefined && !isSeconds(nbf)) throw new TokenRejectedError('malformed');

    const now = this.nowSeconds();
    if (now >= exp + skew) throw new TokenRejectedError('expired');
    if (iat > now + skew || (nbf !== undefined && nbf > now + skew)) {
      throw new TokenRejectedError('not_yet_valid');
    }
    if (exp - iat > maxLifetimeSeconds || now - iat >= maxLifetimeSeconds + skew) {
      throw new TokenRejectedError('too_old');
    }
  }
}

function isSeconds(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

function decodeSegment(segment: string): AccessTokenClaims {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new TokenRejectedError('malformed');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TokenRejectedError('malformed');
  }
  return value as AccessTokenClaims;
}

/**
 * Decodes the signature only when it is exactly as long as the key's modulus and in canonical
 * form: base64url decoders ignore the spare bits of the last character, so without the check
 * several spellings of one token would verify.
 */
function decodeSignature(text: string, key: KeyObject): Buffer {
  const bytes = (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
  // The decoder also takes '+', '/' and '=' and skips other strangers, which then shortens
  // the result: refusing those three and checking both lengths leaves only base64url.
  if (
    text.length !== Math.ceil((bytes * 4) / 3) ||
    text.includes('+') ||
    text.includes('/') ||
    text.includes('=')
  ) {
    throw new TokenRejectedError('bad_signature');
  }
  const spareBits = (text.length * 6) % 8;
  const lastValue = BASE64URL.indexOf(text[text.length - 1]);
  if (spareBits > 0 && lastValue % (1 << spareBits) !== 0) {
    throw new TokenRejectedError('bad_signature');
  }
  const signature = Buffer.from(text, 'base64url');
  if (signature.length !== bytes) throw new TokenRejectedError('bad_signature');
  return signature;
}
