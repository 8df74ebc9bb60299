import { childTraceparent, isTraceparent, sendableTraceparent } from './trace-context';

const PARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('trace context in messages', () => {
  describe(childTraceparent.name, () => {
    it('keeps the trace id and flags and gives the hop a span id of its own', () => {
      const child = childTraceparent(PARENT);

      expect(child).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
      expect(child?.slice(36, 52)).not.toBe('00f067aa0ba902b7');
      expect(isTraceparent(child)).toBe(true);
    });

    it('gives every hop a different span id', () => {
      const spans = new Set(Array.from({ length: 50 }, () => childTraceparent(PARENT)));

      expect(spans.size).toBe(50);
    });

    it('continues no trace when the message carried none', () => {
      expect(childTraceparent(undefined)).toBeUndefined();
    });
  });

  describe(sendableTraceparent.name, () => {
    it('passes a valid trace context and drops anything else, so no sealed message is malformed', () => {
      expect(sendableTraceparent(PARENT)).toBe(PARENT);
      expect(sendableTraceparent('00-xyz')).toBeUndefined();
      expect(sendableTraceparent(PARENT.toUpperCase())).toBeUndefined();
      expect(sendableTraceparent(undefined)).toBeUndefined();
    });
  });
});
