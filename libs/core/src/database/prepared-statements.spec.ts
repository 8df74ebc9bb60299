import { describe, expect, it, jest } from '@jest/globals';
import { Client } from 'pg';

import { PreparingClient, preparedStatement } from './prepared-statements';

describe(PreparingClient.name, () => {
  /** What the client hands to pg's own `query`, without a server. */
  function sent(run: (client: PreparingClient) => unknown): unknown[][] {
    const calls: unknown[][] = [];
    const record = (...args: unknown[]): unknown => {
      calls.push(args);
      return undefined;
    };
    const spy = jest.spyOn(Client.prototype, 'query').mockImplementation(record);
    try {
      void run(new PreparingClient());
    } finally {
      spy.mockRestore();
    }
    return calls;
  }

  it('sends a marked text as a named statement, the same name every time', () => {
    const text = preparedStatement('SELECT $1::int AS n');
    const calls = sent((client) => {
      void client.query(text, [1]);
      void client.query(text, [2]);
    });

    expect(calls).toHaveLength(2);
    const [first, second] = calls.map((args) => args[0] as { name: string; text: string });
    expect(first).toEqual({
      name: expect.stringMatching(/^portcullis_[0-9a-f]{24}$/),
      text,
      values: [1],
    });
    expect(second).toEqual({ name: first.name, text, values: [2] });
  });

  it('gives another text another name', () => {
    const a = preparedStatement('SELECT 1 AS a');
    const b = preparedStatement('SELECT 1 AS b');
    const calls = sent((client) => {
      void client.query(a);
      void client.query(b);
    });

    const names = calls.map((args) => (args[0] as { name: string }).name);
    expect(names[0]).not.toBe(names[1]);
  });

  it('passes a callback on, and leaves texts that were not marked as they are', () => {
    const text = preparedStatement('SELECT $1::text AS t');
    const callback = (): void => undefined;
    const calls = sent((client) => {
      client.query(text, ['x'], callback);
      void client.query('SELECT 2', [3]);
    });

    expect(calls[0]).toEqual([{ name: expect.any(String), text, values: ['x'] }, callback]);
    expect(calls[1]).toEqual(['SELECT 2', [3]]);
  });
});
