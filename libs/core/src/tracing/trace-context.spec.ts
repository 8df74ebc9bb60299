import { formatTraceparent, parseTraceparent, startSpan, traceIdOf } from './trace-context';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const VALID = `00-${TRACE_ID}-${PARENT_ID}-01`;

describe('trace context', () => {
  describe(parseTraceparent.name, () => {
    it('reads a version 00 header into trace id, parent id and flags', () => {
      expect(parseTraceparent(VALID)).toEqual({
        traceId: TRACE_ID,
        parentId: PARENT_ID,
        flags: '01',
      });
    });

    it.each([
      ['another version', `01-${TRACE_ID}-${PARENT_ID}-01`],
      ['version ff', `ff-${TRACE_ID}-${PARENT_ID}-01`],
      ['an all-zero trace id', `00-${'0'.repeat(32)}-${PARENT_ID}-01`],
      ['an all-zero parent id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
      ['upper-case digits', VALID.toUpperCase()],
      ['a short trace id', `00-${TRACE_ID.slice(1)}-${PARENT_ID}-01`],
      ['a missing flags field', `00-${TRACE_ID}-${PARENT_ID}`],
      ['a trailing field', `${VALID}-00`],
      ['two headers joined', `${VALID}, ${VALID}`],
      ['surrounding spaces', ` ${VALID} `],
      ['non-hex digits', `00-${TRACE_ID.replace('4', 'g')}-${PARENT_ID}-01`],
    ])('ignores a header with %s', (_situation, header) => {
      expect(parseTraceparent(header)).toBeUndefined();
    });

    it('ignores what is not a string', () => {
      expect(parseTraceparent(undefined)).toBeUndefined();
      expect(parseTraceparent([VALID])).toBeUndefined();
    });
  });

  describe(startSpan.name, () => {
    it("continues the caller's trace with a new span id and the caller's flags", () => {
      const span = startSpan(parseTraceparent(VALID));

      expect(span.traceId).toBe(TRACE_ID);
      expect(span.parentId).toMatch(/^[0-9a-f]{16}$/);
      expect(span.parentId).not.toBe(PARENT_ID);
      expect(span.flags).toBe('01');
    });

    it('starts a new trace, unsampled, when the caller sent none', () => {
      const first = startSpan(undefined);
      const second = startSpan(undefined);

      expect(parseTraceparent(formatTraceparent(first))).toEqual(first);
      expect(first.flags).toBe('00');
      expect(first.traceId).not.toBe(second.traceId);
    });

    it('gives every request its own span id', () => {
      const spans = new Set(Array.from({ length: 100 }, () => startSpan(undefined).parentId));

      expect(spans.size).toBe(100);
    });

    it('keeps ids distinct and well formed across many refills of its random pool', () => {
      const started = Array.from({ length: 3_000 }, () => startSpan(undefined));

      expect(new Set(started.map((span) => span.traceId)).size).toBe(3_000);
      expect(new Set(started.map((span) => span.parentId)).size).toBe(3_000);
      expect(started.every((span) => /^[0-9a-f]{32}$/.test(span.traceId))).toBe(true);
      expect(started.every((span) => /^[0-9a-f]{16}$/.test(span.parentId))).toBe(true);
    });
  });

  describe(formatTraceparent.name, () => {
    it('writes what it reads', () => {
      expect(formatTraceparent(parseTraceparent(VALID)!)).toBe(VALID);
      expect(traceIdOf(VALID)).toBe(TRACE_ID);
      expect(traceIdOf('garbage')).toBeUndefined();
    });
  });
});
