import { MAX_JSON_DEPTH, MAX_JSON_KEYS, nestingDepth, parseJsonBody } from './json-body-parser';

function codeOf(text: string): string {
  try {
    parseJsonBody(text);
  } catch (error) {
    expect(error).toMatchObject({ statusCode: 400 });
    return (error as { code: string }).code;
  }
  throw new Error('the body was accepted');
}

describe(parseJsonBody.name, () => {
  describe('with an ordinary body', () => {
    it('parses it', () => {
      expect(parseJsonBody('{"items":[{"sku":"KEY-001","quantity":2}]}')).toEqual({
        items: [{ sku: 'KEY-001', quantity: 2 }],
      });
    });

    it('accepts the words __proto__ and constructor as values', () => {
      expect(parseJsonBody('{"note":"constructor __proto__"}')).toEqual({
        note: 'constructor __proto__',
      });
    });

    it('accepts nesting up to the limit', () => {
      const text = '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH);

      expect(() => parseJsonBody(text)).not.toThrow();
    });
  });

  describe('with a body nested too deeply', () => {
    it.each([
      ['arrays', '['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1)],
      ['objects', '{"a":'.repeat(MAX_JSON_DEPTH + 1) + '1' + '}'.repeat(MAX_JSON_DEPTH + 1)],
      ['100 000 open brackets', '['.repeat(100_000)],
    ])('refuses %s before parsing', (_, text) => {
      expect(codeOf(text)).toBe('PORTCULLIS_JSON_TOO_DEEP');
    });

    it('does not count brackets inside strings', () => {
      const text = JSON.stringify({ note: '['.repeat(1000) + '"\\' });

      expect(nestingDepth(text)).toBe(1);
      expect(() => parseJsonBody(text)).not.toThrow();
    });
  });

  describe('with many keys', () => {
    const objectWith = (keys: number) =>
      JSON.stringify(Object.fromEntries(Array.from({ length: keys }, (_, i) => [`k${i}`, i])));

    it('accepts the limit, counted over every object of the body', () => {
      const half = MAX_JSON_KEYS / 2;
      const text = JSON.stringify([JSON.parse(objectWith(half)), JSON.parse(objectWith(half))]);

      expect(() => parseJsonBody(text)).not.toThrow();
    });

    it.each([
      ['one object', objectWith(MAX_JSON_KEYS + 1)],
      ['lines of an order', JSON.stringify({ items: Array(600).fill({ sku: 'A', quantity: 1 }) })],
    ])('refuses one key more, in %s', (_, text) => {
      expect(codeOf(text)).toBe('PORTCULLIS_JSON_TOO_MANY_KEYS');
    });

    it('does not count colons inside strings', () => {
      const text = JSON.stringify({ note: ':'.repeat(MAX_JSON_KEYS * 2) });

      expect(parseJsonBody(text)).toEqual({ note: ':'.repeat(MAX_JSON_KEYS * 2) });
    });
  });

  describe('with a repeated key', () => {
    it.each([
      ['at the top', '{"a":1,"a":2}'],
      ['in a nested object', '{"items":[{"sku":"A","quantity":1,"quantity":1000}]}'],
      ['spelled once escaped', '{"items":[],"\\u0069tems":[{"sku":"A","quantity":1}]}'],
      ['with another value type', '{"note":"x","note":{"admin":true}}'],
    ])('refuses it %s', (_, text) => {
      expect(codeOf(text)).toBe('PORTCULLIS_JSON_DUPLICATE_KEY');
    });

    it('accepts one key in several objects, and colons inside strings', () => {
      const text = '{"items":[{"sku":"A:1","quantity":1},{"sku":"B","quantity":2}],"note":"a:b"}';

      expect(parseJsonBody(text)).toEqual(JSON.parse(text));
    });
  });

  describe('with a forbidden key', () => {
    it.each([
      ['__proto__ at the top', '{"__proto__":{"admin":true}}'],
      ['__proto__ nested in an array', '{"items":[{"sku":"A","__proto__":{"x":1}}]}'],
      ['an escaped __proto__', '{"\\u005f_proto__":{"admin":true}}'],
      ['constructor', '{"constructor":{"prototype":{"admin":true}}}'],
      ['a plain constructor key', '{"items":[],"constructor":1}'],
    ])('refuses %s', (_, text) => {
      expect(codeOf(text)).toBe('PORTCULLIS_JSON_FORBIDDEN_KEY');
    });
  });

  describe('with an unpaired surrogate', () => {
    it.each([
      ['a high surrogate in a value', '{"email":"a\\ud800@example.com"}'],
      ['a low surrogate in a value', '{"email":"a@exa\\udc00mple.com"}'],
      ['a surrogate at the end of a nested value', '{"items":[{"sku":"KEY\\uDBFF"}]}'],
      ['two high surrogates in a row', '{"note":"\\ud800\\ud800"}'],
      ['a surrogate in a key', '{"\\udfff":1}'],
    ])('refuses %s', (_, text) => {
      expect(codeOf(text)).toBe('PORTCULLIS_JSON_LONE_SURROGATE');
    });

    it('accepts a surrogate pair, escaped or not', () => {
      expect(parseJsonBody('{"note":"\\ud83d\\ude00 \u{1F600}"}')).toEqual({
        note: '\u{1F600} \u{1F600}',
      });
    });
  });

  describe('with text that is not JSON', () => {
    it.each(['{"items": [', "{'a':1}", 'NaN', '{"a":1}}'])('refuses %p as invalid', (text) => {
      expect(codeOf(text)).toBe('FST_ERR_CTP_INVALID_JSON_BODY');
    });

    it('refuses an empty body', () => {
      expect(codeOf('')).toBe('FST_ERR_CTP_EMPTY_JSON_BODY');
    });
  });
});
