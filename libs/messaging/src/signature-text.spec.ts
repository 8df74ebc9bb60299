import { randomBytes } from 'node:crypto';

import fc from 'fast-check';

import { SIGNATURE_CHARS, decodeSignature, encodeSignature } from './signature-text';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** A signature's text between two other fields, as it sits in a wire message. */
function framed(text: string): { wire: Buffer; start: number } {
  const wire = Buffer.from(`kid.${text}.{}`, 'latin1');
  return { wire, start: 4 };
}

describe(decodeSignature.name, () => {
  it('decodes every 64-byte value from its base64url text, as node:buffer does', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (bytes) => {
        const text = Buffer.from(bytes).toString('base64url');
        const { wire, start } = framed(text);

        expect(text).toHaveLength(SIGNATURE_CHARS);
        expect(decodeSignature(wire, start)).toEqual(Buffer.from(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses any byte outside the alphabet, in any position', () => {
    const text = randomBytes(64).toString('base64url');
    const outside = [...Array(256).keys()].filter(
      (code) => !ALPHABET.includes(String.fromCharCode(code)),
    );
    expect(outside).toHaveLength(192);

    for (let position = 0; position < SIGNATURE_CHARS; position++) {
      for (const code of outside) {
        const { wire, start } = framed(text);
        wire[start + position] = code;
        expect(decodeSignature(wire, start)).toBeUndefined();
      }
    }
  });

  it('gives each signature one spelling: a last character with spare bits set is refused', () => {
    const bytes = randomBytes(64);
    const text = bytes.toString('base64url');

    const sameSignature = [...ALPHABET].filter((last) => {
      const { wire, start } = framed(text.slice(0, -1) + last);
      return decodeSignature(wire, start)?.equals(bytes);
    });
    const refused = [...ALPHABET].filter((last) => {
      const { wire, start } = framed(text.slice(0, -1) + last);
      return decodeSignature(wire, start) === undefined;
    });

    expect(sameSignature).toEqual([text[SIGNATURE_CHARS - 1]]);
    expect(refused).toHaveLength(60);
    expect(refused.map((last) => ALPHABET.indexOf(last) & 0x0f)).not.toContain(0);
  });

  it('refuses text that runs past the end of the message', () => {
    const text = randomBytes(64).toString('base64url');
    const wire = Buffer.from(`kid.${text}`, 'latin1');

    expect(decodeSignature(wire, 4)).toEqual(Buffer.from(text, 'base64url'));
    expect(decodeSignature(wire, 5)).toBeUndefined();
    expect(decodeSignature(wire.subarray(0, wire.length - 1), 4)).toBeUndefined();
    expect(decodeSignature(wire, -1)).toBeUndefined();
  });

  it('refuses a start that is not an index', () => {
    const wire = Buffer.from(`kid.${randomBytes(64).toString('base64url')}`, 'latin1');

    for (const start of [Number.NaN, 4.5, Infinity, -Infinity]) {
      expect(decodeSignature(wire, start)).toBeUndefined();
    }
  });
});

describe(encodeSignature.name, () => {
  it('writes what node:buffer writes, in place, and nothing around it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (bytes) => {
        const wire = Buffer.alloc(SIGNATURE_CHARS + 4, '.');

        encodeSignature(bytes, wire, 2);

        expect(wire.toString('latin1')).toBe(`..${Buffer.from(bytes).toString('base64url')}..`);
        expect(decodeSignature(wire, 2)).toEqual(Buffer.from(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a value that is not 64 bytes, or too little room', () => {
    expect(() => encodeSignature(new Uint8Array(63), Buffer.alloc(100), 0)).toThrow(RangeError);
    expect(() => encodeSignature(new Uint8Array(64), Buffer.alloc(85), 0)).toThrow(RangeError);
    for (const start of [Number.NaN, 0.5]) {
      expect(() => encodeSignature(new Uint8Array(64), Buffer.alloc(100), start)).toThrow(
        RangeError,
      );
    }
  });
});
