import { afterEach, describe, expect, it, jest } from '@jest/globals';

import type { DurableEvents } from './transports';
import { InProcessServer } from './transports';

function server(): InProcessServer {
  return new InProcessServer({}, {} as DurableEvents);
}

describe('SignedNatsServer routes', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('finds the handler of a message type without parsing the type as JSON', () => {
    const transport = server();
    const handler = Object.assign(() => Promise.resolve(), { isEventHandler: true });
    transport.addHandler('orders.created', handler, true);
    const parse = jest.spyOn(JSON, 'parse');

    expect(transport.getHandlerByPattern('orders.created')).toBe(handler);
    expect(parse).not.toHaveBeenCalled();
  });

  it('still normalises a JSON pattern the way Nest does', () => {
    const transport = server();
    const handler = Object.assign(() => Promise.resolve(), { isEventHandler: false });
    transport.addHandler({ cmd: 'sum', area: 'maths' }, handler);

    expect(transport.getHandlerByPattern('{"cmd":"sum","area":"maths"}')).toBe(handler);
    expect(transport.getHandlerByPattern('billing.invoice.paid')).toBeNull();
  });
});
