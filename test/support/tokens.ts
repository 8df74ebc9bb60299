import {
  type KeyObject,
  createHash,
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  sign,
} from 'node:crypto';

/** What an attacker (or an operator) builds tokens from: an RSA key pair and its `kid`. */
export interface RsaKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** RFC 7638 thumbprint of the public key, as auth computes it. */
  readonly kid: string;
  /** PKCS#8 PEM of the private key, the form auth imports from `token-signing.key`. */
  readonly privatePem: string;
  /** The public key as a JWK (`kty`, `n`, `e`). */
  readonly publicJwk: { kty: 'RSA'; n: string; e: string };
}

export type Claims = Record<string, unknown>;
export type Header = Record<string, unknown>;

export function rsaKey(modulusLength = 2048): RsaKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength });
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    privateKey,
    publicKey,
    kid: rsaThumbprint(publicKey),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicJwk: { kty: 'RSA', n: jwk.n!, e: jwk.e! },
  };
}

/** RFC 7638: SHA-256 over the required members in lexicographic order, base64url. */
export function rsaThumbprint(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  const canonical = JSON.stringify({ e: jwk.e, kty: 'RSA', n: jwk.n });
  return createHash('sha256').update(canonical).digest('base64url');
}

/** A public key from a JWKS entry. */
export function publicKeyFromJwk(jwk: { n: string; e: string }): KeyObject {
  return createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' });
}

export function base64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** The three parts of a compact JWS, the first two decoded. */
export function decodeToken(token: string): { header: Header; claims: Claims; signature: string } {
  const [header, claims, signature] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Header,
    claims: JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')) as Claims,
    signature: signature ?? '',
  };
}

/** A compact token from exactly these parts; the signature is whatever the caller passes. */
export function compact(header: Header, claims: Claims, signature = ''): string {
  return `${base64urlJson(header)}.${base64urlJson(claims)}.${signature}`;
}

/** RS256 over `header.claims` with any RSA private key. */
export function signRs256(privateKey: KeyObject, header: Header, claims: Claims): string {
  const input = `${base64urlJson(header)}.${base64urlJson(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

/** HS256 over `header.claims` with any bytes as the secret (e.g. a public key, for confusion). */
export function signHs256(secret: string | Buffer, header: Header, claims: Claims): string {
  const input = `${base64urlJson(header)}.${base64urlJson(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

export interface ClaimOptions {
  sub: string;
  sid: string;
  roles: string[];
  issuer?: string;
  audience?: string;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
}

export const DEFAULT_ISSUER = 'urn:portcullis:auth';
export const DEFAULT_AUDIENCE = 'urn:portcullis:api';

/** The claims auth puts in an access token, with the values given. */
export function accessClaims(options: ClaimOptions): Claims {
  const now = Math.floor(Date.now() / 1000);
  return {
    sid: options.sid,
    roles: options.roles,
    iat: now,
    exp: now + (options.expiresIn ?? 300),
    aud: options.audience ?? DEFAULT_AUDIENCE,
    iss: options.issuer ?? DEFAULT_ISSUER,
    sub: options.sub,
    jti: randomUUID(),
  };
}

/** One `security event` line from a process log. */
export interface SecurityEventRecord {
  type: string;
  outcome?: string;
  reason?: string;
  correlationId?: string;
  actorId?: string;
  details?: Record<string, unknown>;
}

/** Every security event in captured log text (JSON lines), oldest first. */
export function securityEvents(logText: string): SecurityEventRecord[] {
  const events: SecurityEventRecord[] = [];
  for (const line of logText.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      // One pino line: the event's fields beside `msg`.
      const entry = JSON.parse(line) as { msg?: unknown } & SecurityEventRecord;
      if (entry.msg === 'security event') events.push(entry);
    } catch {
      // A line cut by the log's size limit, or not JSON.
    }
  }
  return events;
}

/**
 * Text that must never reach a client: library names and messages, and stack frames.
 */
export const LIBRARY_TEXT =
  /jwt|jsonwebtoken|passport|invalid signature|jws|kid|algorithm|secretOrKey|stack|\bat \S+ \(|\bat .*:\d+:\d+|node_modules|TypeError|Error:/i;
