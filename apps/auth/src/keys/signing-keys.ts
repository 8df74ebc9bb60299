import { Inject, Injectable } from '@nestjs/common';
import { type KeyObject, createPrivateKey, createPublicKey } from 'node:crypto';

import type { PublicJwk } from '@portcullis/contracts';
import { SECRET_FILES } from '@portcullis/core';
import { SECRET_NAMES, type SecretFiles, rsaThumbprint } from '@portcullis/crypto';

/** The RSA key that signs access tokens, and the JWKS that publishes its public half. */
@Injectable()
export class SigningKeys {
  readonly kid: string;
  readonly privateKey: KeyObject;
  private readonly jwks: PublicJwk[];

  constructor(@Inject(SECRET_FILES) secrets: SecretFiles) {
    this.privateKey = createPrivateKey(secrets.read(SECRET_NAMES.tokenSigningKey));
    if (this.privateKey.asymmetricKeyType !== 'rsa') {
      throw new Error('the token signing key must be an RSA key');
    }
    const publicKey = createPublicKey(this.privateKey);
    this.kid = rsaThumbprint(publicKey);
    const jwk = publicKey.export({ format: 'jwk' });
    this.jwks = [{ kty: 'RSA', kid: this.kid, use: 'sig', alg: 'RS256', n: jwk.n!, e: jwk.e! }];
  }

  publicKeys(): PublicJwk[] {
    return this.jwks.map((key) => ({ ...key }));
  }
}
