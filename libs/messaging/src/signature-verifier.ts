import { type KeyObject, verify } from 'node:crypto';

/** Checks one Ed25519 signature over the exact bytes it covers. */
export interface SignatureVerifier {
  /**
   * True for a valid signature, false for any other. Rejects only when the check itself could
   * not run, as `node:crypto` throws for it on the calling thread.
   */
  verify(body: Uint8Array, publicKey: KeyObject, signature: Uint8Array): Promise<boolean>;
}

/** The check on the calling thread. */
export function verifySignature(
  body: Uint8Array,
  publicKey: KeyObject,
  signature: Uint8Array,
): boolean {
  return verify(null, body, publicKey, signature);
}

/** Verifies on the calling thread: the behaviour of a process with no verification workers. */
export const inlineSignatureVerifier: SignatureVerifier = {
  verify: (body, publicKey, signature) =>
    new Promise((resolve) => resolve(verifySignature(body, publicKey, signature))),
};
