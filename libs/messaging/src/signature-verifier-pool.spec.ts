import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { type KeyObject, generateKeyPairSync, sign } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';

import { SignatureVerifierPool } from './signature-verifier-pool';

interface Signed {
  readonly body: Buffer;
  readonly publicKey: KeyObject;
  readonly signature: Buffer;
}

function keyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

const KEYS = keyPair();

function signed(index: number, keys = KEYS): Signed {
  const body = Buffer.from(JSON.stringify({ index, text: 'x'.repeat(index % 50) }));
  return { body, publicKey: keys.publicKey, signature: sign(null, body, keys.privateKey) };
}

/** The same message with one bit of its body flipped: the signature no longer covers it. */
function forged(message: Signed): Signed {
  const body = Buffer.from(message.body);
  body[body.length - 2] ^= 1;
  return { ...message, body };
}

const check = (pool: SignatureVerifierPool, message: Signed): Promise<boolean> =>
  pool.verify(message.body, message.publicKey, message.signature);

/** The pool's worker in slot `slot`, to stop it as a crash would. */
function workerIn(pool: SignatureVerifierPool, slot = 0): Worker {
  const slots = pool['slots'] as Array<{ worker?: Worker }>;
  const worker = slots[slot].worker;
  if (!worker) throw new Error(`no worker in slot ${slot}`);
  return worker;
}

describe(SignatureVerifierPool.name, () => {
  let pool: SignatureVerifierPool | undefined;
  let posted: jest.SpiedFunction<Worker['postMessage']>;
  /** Checks in each batch sent to a worker (read before its buffers move to the worker). */
  let batchSizes: number[];

  beforeEach(() => {
    batchSizes = [];
    const { postMessage } = Object.getOwnPropertyDescriptors(Worker.prototype);
    posted = jest.spyOn(Worker.prototype, 'postMessage').mockImplementation(function (
      this: Worker,
      value,
      transfer,
    ) {
      batchSizes.push((value as { index: Uint32Array }).index.length / 5);
      (postMessage.value as Worker['postMessage']).call(this, value, transfer);
    });
  });

  afterEach(async () => {
    posted.mockRestore();
    jest.restoreAllMocks();
    await pool?.close();
    pool = undefined;
  });

  describe('answering checks', () => {
    it('accepts valid signatures and refuses forged ones, answering in the order asked', async () => {
      pool = new SignatureVerifierPool(2, { maxBatch: 8 });
      const messages = Array.from({ length: 40 }, (_, i) =>
        i % 3 === 0 ? forged(signed(i)) : signed(i),
      );
      const answered: number[] = [];

      const answers = await Promise.all(
        messages.map((message, i) =>
          check(pool!, message).then((valid) => {
            answered.push(i);
            return valid;
          }),
        ),
      );

      expect(answers).toEqual(messages.map((_, i) => i % 3 !== 0));
      expect(answered).toEqual(messages.map((_, i) => i));
    });

    it('refuses a signature checked against another key', async () => {
      pool = new SignatureVerifierPool(1);
      const other = keyPair();
      const message = signed(1);

      await expect(check(pool, { ...message, publicKey: other.publicKey })).resolves.toBe(false);
      await expect(check(pool, message)).resolves.toBe(true);
    });

    it('keeps at most maxKeys keys per worker and still checks against every key', async () => {
      pool = new SignatureVerifierPool(1, { maxKeys: 2 });
      const pairs = Array.from({ length: 5 }, keyPair);

      for (let round = 0; round < 2; round += 1) {
        for (const [i, pair] of pairs.entries()) {
          await expect(check(pool, signed(i, pair))).resolves.toBe(true);
          await expect(check(pool, forged(signed(i, pair)))).resolves.toBe(false);
        }
      }
    });
  });

  describe('batching', () => {
    it('sends the checks of one turn as one batch per worker', async () => {
      pool = new SignatureVerifierPool(2, { maxBatch: 64 });

      await Promise.all(Array.from({ length: 100 }, (_, i) => check(pool!, signed(i))));

      expect(batchSizes).toEqual([50, 50]);
    });

    it('never puts more than maxBatch checks in one message', async () => {
      pool = new SignatureVerifierPool(1, { maxBatch: 16 });

      await Promise.all(Array.from({ length: 40 }, (_, i) => check(pool!, signed(i))));

      expect(batchSizes).toEqual([14, 14, 12]);
    });

    it('sends checks of later turns in later batches', async () => {
      pool = new SignatureVerifierPool(1);

      await check(pool, signed(1));
      await check(pool, signed(2));

      expect(posted).toHaveBeenCalledTimes(2);
    });
  });

  describe('when a worker stops with checks in hand', () => {
    it('answers them on the calling thread, correctly, and starts a worker again later', async () => {
      const warned = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      pool = new SignatureVerifierPool(1, { maxBatch: 200 });
      await check(pool, signed(0));
      const messages = Array.from({ length: 200 }, (_, i) =>
        i % 2 === 0 ? signed(i) : forged(signed(i)),
      );

      const answers = Promise.all(messages.map((message) => check(pool!, message)));
      // The batch leaves in the next turn; the worker needs far longer than this to check it.
      await new Promise((resolve) => setImmediate(resolve));
      expect(posted).toHaveBeenCalledTimes(2);
      await workerIn(pool).terminate();

      expect(await answers).toEqual(messages.map((_, i) => i % 2 === 0));
      expect(warned).toHaveBeenCalledWith(
        expect.objectContaining({
          msg: 'signature verification worker stopped; its checks ran on the main thread',
        }),
      );
      expect(pool.runningWorkers()).toBe(0);

      await sleep(150);
      await expect(check(pool, signed(1))).resolves.toBe(true);
      await expect(check(pool, forged(signed(2)))).resolves.toBe(false);
      expect(pool.runningWorkers()).toBe(1);
      expect(posted).toHaveBeenCalledTimes(4);
    });

    it('checks on the calling thread while the stopped worker rests', async () => {
      jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      pool = new SignatureVerifierPool(1);
      await check(pool, signed(0));
      await workerIn(pool).terminate();
      await sleep(10);
      posted.mockClear();

      await expect(check(pool, signed(1))).resolves.toBe(true);
      await expect(check(pool, forged(signed(1)))).resolves.toBe(false);

      expect(posted).not.toHaveBeenCalled();
    });
  });

  describe('shutting down', () => {
    it('answers the checks in hand, stops every worker and checks inline afterwards', async () => {
      pool = new SignatureVerifierPool(2);
      await check(pool, signed(0));
      const messages = Array.from({ length: 100 }, (_, i) =>
        i % 4 === 0 ? forged(signed(i)) : signed(i),
      );
      const answers = Promise.all(messages.map((message) => check(pool!, message)));
      await new Promise((resolve) => setImmediate(resolve));

      await pool.onApplicationShutdown();

      expect(await answers).toEqual(messages.map((_, i) => i % 4 !== 0));
      expect(pool.runningWorkers()).toBe(0);
      posted.mockClear();
      await expect(check(pool, signed(1))).resolves.toBe(true);
      await expect(check(pool, forged(signed(1)))).resolves.toBe(false);
      expect(posted).not.toHaveBeenCalled();
      expect(pool.runningWorkers()).toBe(0);
    });

    it('answers checks asked for but not yet sent', async () => {
      pool = new SignatureVerifierPool(1);
      const answers = Promise.all([check(pool, signed(1)), check(pool, forged(signed(2)))]);

      await pool.close();

      expect(await answers).toEqual([true, false]);
      expect(posted).not.toHaveBeenCalled();
    });
  });

  describe('with no workers', () => {
    it('checks on the calling thread and starts no thread', async () => {
      pool = new SignatureVerifierPool(0);

      await expect(check(pool, signed(1))).resolves.toBe(true);
      await expect(check(pool, forged(signed(1)))).resolves.toBe(false);

      expect(posted).not.toHaveBeenCalled();
      expect(pool.runningWorkers()).toBe(0);
    });
  });
});
