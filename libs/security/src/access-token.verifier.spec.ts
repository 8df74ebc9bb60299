import { createHmac, generateKeyPairSync, sign } from 'node:crypto';

import fc from 'fast-check';
import jwt from 'jsonwebtoken';

import { AccessTokenVerifier, TokenRejectedError } from './access-token.verifier';

const NOW = 1_800_000_000;
const RULES = {
  issuer: 'https://auth.portcullis.test',
  audience: 'portcullis',
  maxLifetimeSeconds: 960,
  clockToleranceSeconds: 5,
};
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });

const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function token(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  const input = `${encode({ alg: 'RS256', typ: 'JWT', kid: 'k1', ...header })}.${encode({
    iss: RULES.issuer,
    aud: RULES.audience,
    sub: 'user',
    iat: NOW - 10,
    exp: NOW + 890,
    ...claims,
  })}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

function reasonFor(candidate: string): string | undefined {
  try {
    new AccessTokenVerifier(RULES, () => NOW).verify(candidate, publicKey);
    return undefined;
  } catch (error) {
    if (error instanceof TokenRejectedError) return error.reason;
    throw error;
  }
}

describe(AccessTokenVerifier.name, () => {
  it('returns the claims of a well-formed token signed by the key', () => {
    const claims = new AccessTokenVerifier(RULES, () => NOW).verify(token(), publicKey);

    expect(claims).toMatchObject({ sub: 'user', iss: RULES.issuer, exp: NOW + 890 });
  });

  it('accepts the audience inside a list', () => {
    expect(reasonFor(token({ aud: ['other', RULES.audience] }))).toBeUndefined();
  });

  describe('refuses the algorithm', () => {
    it.each(['none', 'None', 'HS256', 'RS384', 'ES256', 'PS256', 'EdDSA'])('%s', (alg) => {
      expect(reasonFor(token({}, { alg }))).toBe('unexpected_algorithm');
    });

    it('HS256 keyed with the public key', () => {
      const pem = publicKey.export({ type: 'spki', format: 'pem' });
      const input = `${encode({ alg: 'HS256', kid: 'k1' })}.${encode({ iss: RULES.issuer })}`;
      const mac = createHmac('sha256', pem).update(input).digest('base64url');

      expect(reasonFor(`${input}.${mac}`)).toBe('unexpected_algorithm');
    });
  });

  describe('refuses the signature', () => {
    it('of another key', () => {
      const valid = token();
      const input = valid.slice(0, valid.lastIndexOf('.'));
      const forged = sign('sha256', Buffer.from(input), other.privateKey).toString('base64url');

      expect(reasonFor(`${input}.${forged}`)).toBe('bad_signature');
    });

    it('over a changed payload', () => {
      const [header, , signature] = token().split('.');
      const payload = encode({ iss: RULES.issuer, aud: RULES.audience, iat: NOW, exp: NOW + 60 });

      expect(reasonFor(`${header}.${payload}.${signature}`)).toBe('bad_signature');
    });

    it('spelt with non-zero spare bits in its last character', () => {
      const valid = token();
      const last = valid[valid.length - 1];
      const alias = String.fromCharCode(last.charCodeAt(0) + 1);

      expect(reasonFor(valid.slice(0, -1) + alias)).toBe('bad_signature');
    });

    it.each([
      ['shortened', (s: string) => s.slice(0, -4)],
      ['lengthened', (s: string) => `${s}AAAA`],
      ['padded', (s: string) => `${s}==`],
      ['empty', () => ''],
      ['in the base64 alphabet', (s: string) => `+/${s.slice(2)}`],
      ['with a space inside', (s: string) => `${s.slice(0, 10)} ${s.slice(11)}`],
      ['with padding inside', (s: string) => `${s.slice(0, 10)}=${s.slice(11)}`],
    ])('when %s', (_, change) => {
      const valid = token();
      const cut = valid.lastIndexOf('.');

      expect(reasonFor(`${valid.slice(0, cut + 1)}${change(valid.slice(cut + 1))}`)).toMatch(
        /bad_signature|malformed/,
      );
    });
  });

  describe('refuses the claims', () => {
    it.each([
      ['another issuer', { iss: 'https://evil.test' }, 'wrong_issuer'],
      ['no issuer', { iss: undefined }, 'wrong_issuer'],
      ['another audience', { aud: 'elsewhere' }, 'wrong_audience'],
      ['an audience list without ours', { aud: ['a', 'b'] }, 'wrong_audience'],
      ['expiry passed beyond the tolerance', { iat: NOW - 900, exp: NOW - 6 }, 'expired'],
      ['a future issue time', { iat: NOW + 60, exp: NOW + 900 }, 'not_yet_valid'],
      ['a future not-before', { nbf: NOW + 60 }, 'not_yet_valid'],
      ['a lifetime over the maximum', { iat: NOW - 10, exp: NOW + 3600 }, 'too_old'],
      ['no expiry', { exp: undefined }, 'malformed'],
      ['no issue time', { iat: undefined }, 'malformed'],
      ['an expiry given as text', { exp: String(NOW + 60) }, 'malformed'],
      ['a fractional expiry', { exp: NOW + 60.5 }, 'malformed'],
      ['a not-before given as text', { nbf: 'now' }, 'malformed'],
    ])('with %s', (_, claims, reason) => {
      expect(reasonFor(token(claims))).toBe(reason);
    });

    it('accepts an expiry passed within the clock tolerance', () => {
      expect(reasonFor(token({ iat: NOW - 900, exp: NOW - 2 }))).toBeUndefined();
    });
  });

  describe('refuses malformed tokens', () => {
    it.each([
      ['two segments', 'a.b'],
      ['four segments', `${token()}.x`],
      ['an empty header', `.${token().split('.').slice(1).join('.')}`],
      ['a header that is not JSON', `bm90IGpzb24.${token().split('.').slice(1).join('.')}`],
      ['a header that is an array', `${encode([1])}.${token().split('.').slice(1).join('.')}`],
      ['non-base64url characters', token().replace('.', '.+')],
      ['an oversized token', `${token()}${'A'.repeat(9000)}`],
    ])('with %s', (_, candidate) => {
      expect(reasonFor(candidate)).toMatch(/malformed|bad_signature/);
    });

    it('with a payload character swapped for one that latin1 would alias', () => {
      const valid = token();
      const at = valid.indexOf('.') + 5;
      const alias = String.fromCharCode(valid.charCodeAt(at) + 256);

      expect(reasonFor(valid.slice(0, at) + alias + valid.slice(at + 1))).toBe('bad_signature');
    });

    it('with a critical header it does not understand', () => {
      expect(reasonFor(token({}, { crit: ['exp'] }))).toBe('malformed');
    });
  });

  it('agrees with jsonwebtoken on which tokens are valid', () => {
    const options: jwt.VerifyOptions = {
      algorithms: ['RS256'],
      issuer: RULES.issuer,
      audience: RULES.audience,
      maxAge: RULES.maxLifetimeSeconds,
      clockTolerance: RULES.clockToleranceSeconds,
      clockTimestamp: NOW,
    };
    const offset = fc.integer({ min: -2000, max: 2000 });
    fc.assert(
      fc.property(offset, offset, fc.option(offset, { nil: undefined }), (iat, life, nbf) => {
        const candidate = token({
          iat: NOW + iat,
          exp: NOW + iat + Math.abs(life),
          nbf: nbf === undefined ? undefined : NOW + nbf,
        });
        let libraryAccepts = true;
        try {
          jwt.verify(candidate, publicKey, options);
        } catch {
          libraryAccepts = false;
        }
        // jsonwebtoken tolerates a lifetime over the maximum while the token is young; the
        // verifier refuses such a token outright, so it may only be stricter, never laxer.
        const accepted = reasonFor(candidate) === undefined;
        return accepted ? libraryAccepts : true;
      }),
    );
  });
});
