import { Injectable } from '@nestjs/common';
import { hash, verify } from '@node-rs/argon2';

/** OWASP's argon2id parameters: 19 MiB of memory, two passes, one lane. */
/** `Algorithm.Argon2id` of @node-rs/argon2, a const enum that per-file compilers erase. */
const ARGON2ID_ALGORITHM = 2;

const ARGON2ID = {
  algorithm: ARGON2ID_ALGORITHM,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

/**
 * Hashes and checks passwords with argon2id on libuv's thread pool, off the event loop.
 * Checking against an unknown account still costs one verification, against a dummy hash,
 * so the answer takes as long as for a wrong password.
 */
@Injectable()
export class PasswordHasher {
  private readonly dummyHash = hash('portcullis-timing-equaliser', ARGON2ID);

  /** Whether a stored hash was made with other parameters than today's, and so is upgraded. */
  needsRehash(storedHash: string): boolean {
    const { memoryCost, timeCost, parallelism } = ARGON2ID;
    return !storedHash.startsWith(`$argon2id$v=19$m=${memoryCost},t=${timeCost},p=${parallelism}$`);
  }

  hash(password: string): Promise<string> {
    return hash(password, ARGON2ID);
  }

  async verify(storedHash: string | undefined, password: string): Promise<boolean> {
    const target = storedHash ?? (await this.dummyHash);
    try {
      const matches = await verify(target, password);
      return matches && storedHash !== undefined;
    } catch {
      return false;
    }
  }
}
