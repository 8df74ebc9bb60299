import { describe, expect, it } from '@jest/globals';

import {
  MAX_FRAME_BYTES,
  MAX_FRAME_EVENTS,
  encodeFrame,
  frameMessageId,
  frameRuns,
  readFrame,
} from './event-frames';

const event = (text: string): Buffer => Buffer.from(text, 'utf8');

describe('event frames', () => {
  it('carry their events unchanged, in order', () => {
    const events = [event('orders-1.sig.{"a":1}'), event('x'), event('é'.repeat(300))];

    const body = encodeFrame(events);

    expect(readFrame(body, '3')).toEqual(events);
  });

  it('are read from a view into a larger buffer, as a delivery hands them over', () => {
    const body = encodeFrame([event('first'), event('second')]);
    const larger = Buffer.concat([Buffer.from('prefix'), body, Buffer.from('suffix')]);
    const view = new Uint8Array(larger.buffer, larger.byteOffset + 6, body.length);

    expect(readFrame(view, '2')?.map(String)).toEqual(['first', 'second']);
  });

  it('are refused when the header and the body disagree or either is malformed', () => {
    const body = encodeFrame([event('one'), event('two'), event('three')]);
    const lengthOf = (n: number): Buffer => {
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32BE(n);
      return bytes;
    };
    const cases: Array<[string, Uint8Array, string]> = [
      ['fewer events declared', body, '2'],
      ['more events declared', body, '4'],
      ['a count that is not a plain number', body, '3.0'],
      ['a signed count', body, '+3'],
      ['a count with leading zeros', body, '03'],
      ['a count in hex', body, '0x3'],
      ['an empty count', body, ''],
      ['one event', encodeFrame([event('a'), event('b')]).subarray(0, 5), '1'],
      ['a count above the bound', body, String(MAX_FRAME_EVENTS + 1)],
      ['a length running past the end', body.subarray(0, body.length - 1), '3'],
      ['a truncated length', Buffer.concat([body, Buffer.from([0, 0])]), '4'],
      ['bytes left over', Buffer.concat([body, lengthOf(1), Buffer.from('x')]), '3'],
      ['an empty event', Buffer.concat([lengthOf(1), Buffer.from('x'), lengthOf(0)]), '2'],
      ['a huge length', Buffer.concat([lengthOf(0xffffffff), Buffer.from('x')]), '2'],
      ['an empty body', Buffer.alloc(0), '2'],
    ];

    for (const [name, bytes, declared] of cases) {
      expect({ name, events: readFrame(bytes, declared) }).toEqual({ name, events: undefined });
    }
  });

  it(`keep to a lower byte bound where the server accepts less than ${MAX_FRAME_BYTES * 2} bytes`, () => {
    const items = [0, 1, 2, 3, 4].map((n) => ({ n, data: Buffer.alloc(100_000) }));

    // A server with max_payload at 256 KiB: frames of 128 KiB, one event each here.
    expect(frameRuns(items, 128 * 1024).map((run) => run.length)).toEqual([1, 1, 1, 1, 1]);
    expect(frameRuns(items).map((run) => run.length)).toEqual([5]);
  });

  it('are built from two events up to the bound, and never from one', () => {
    expect(() => encodeFrame([event('alone')])).toThrow(RangeError);
    expect(() =>
      encodeFrame(Array.from({ length: MAX_FRAME_EVENTS + 1 }, () => event('e'))),
    ).toThrow(RangeError);
  });

  it(`split what waits into runs of at most ${MAX_FRAME_EVENTS} events and ${MAX_FRAME_BYTES} bytes, in order`, () => {
    const small = Array.from({ length: MAX_FRAME_EVENTS + 10 }, (_, n) => ({
      n,
      data: event('e'),
    }));
    const runs = frameRuns(small);
    expect(runs.map((run) => run.length)).toEqual([MAX_FRAME_EVENTS, 10]);
    expect(runs.flat().map((item) => item.n)).toEqual(small.map((item) => item.n));

    const third = Math.floor(MAX_FRAME_BYTES / 3);
    const large = [0, 1, 2, 3].map((n) => ({ n, data: Buffer.alloc(third) }));
    // Three thirds and their lengths pass the bound: two fit, then the next run starts.
    expect(frameRuns(large).map((run) => run.map((item) => item.n))).toEqual([
      [0, 1],
      [2, 3],
    ]);
  });

  it('leave an event above the byte bound alone, between the runs around it', () => {
    const items = [
      { n: 0, data: event('a') },
      { n: 1, data: Buffer.alloc(MAX_FRAME_BYTES + 1) },
      { n: 2, data: event('b') },
      { n: 3, data: event('c') },
    ];

    expect(frameRuns(items).map((run) => run.map((item) => item.n))).toEqual([[0], [1], [2, 3]]);
  });

  it('are named by their events, so the same events sent again are one message to the stream', () => {
    const ids = ['0a1b', '2c3d'];

    expect(frameMessageId(ids)).toBe(frameMessageId([...ids]));
    expect(frameMessageId(ids)).not.toBe(frameMessageId([...ids].reverse()));
    expect(frameMessageId(ids)).not.toBe(frameMessageId(['0a1b']));
    expect(frameMessageId(ids)).toMatch(/^frame-[A-Za-z0-9_-]{43}$/);
  });
});
