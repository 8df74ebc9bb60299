import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';

import { type EmbeddedDatabase, openEmbeddedDatabase } from '../../../../jest/embedded-database';
import { DatabaseLogger } from './database-logger';

describe('failed statements in the log, on a real database', () => {
  let database: EmbeddedDatabase;
  let db: DataSource;

  beforeAll(async () => {
    database = await openEmbeddedDatabase('database-logger', {
      service: 'orders',
      entities: [],
      migrations: [],
    });
    db = database.db;
    await db.query('CREATE TABLE orders.secrets (id int PRIMARY KEY, digest text NOT NULL UNIQUE)');
  }, 60_000);

  afterAll(() => database?.close());

  afterEach(() => jest.restoreAllMocks());

  it('logs what failed, as one structured line, and none of the values', async () => {
    const secret = '$argon2id$v=19$m=19456,t=2,p=1$not-for-the-log';
    await db.query('INSERT INTO orders.secrets (id, digest) VALUES ($1, $2)', [1, secret]);
    const warned = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const printed = jest.spyOn(console, 'log').mockImplementation(() => undefined);

    await expect(
      db.query('INSERT INTO orders.secrets (id, digest) VALUES ($1, $2)', [2, secret]),
    ).rejects.toThrow();

    expect(printed).not.toHaveBeenCalled();
    expect(warned).toHaveBeenCalledTimes(1);
    const [line] = warned.mock.calls[0] as [Record<string, unknown>];
    expect(line).toMatchObject({
      msg: 'statement failed',
      code: '23505',
      constraint: 'secrets_digest_key',
      statement: 'INSERT INTO orders.secrets (id, digest) VALUES ($1, $2)',
    });
    expect(JSON.stringify(warned.mock.calls)).not.toContain('not-for-the-log');
  });

  it('leaves out the input a data exception quotes', async () => {
    const warned = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);

    await expect(db.query('SELECT $1::uuid', ['card-4242-not-for-the-log'])).rejects.toThrow();

    const [line] = warned.mock.calls[0] as [Record<string, unknown>];
    expect(line).toMatchObject({ code: '22P02', error: expect.stringContaining('[value]') });
    expect(JSON.stringify(warned.mock.calls)).not.toContain('not-for-the-log');
  });

  it('never throws, whatever it is handed', () => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const logger = new DatabaseLogger();
    expect(() => logger.logQueryError(null as unknown as Error, 'SELECT 1')).not.toThrow();
    expect(() => logger.logQueryError('lost', undefined as unknown as string)).not.toThrow();
  });
});
