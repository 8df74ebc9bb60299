import { BadRequestException, type ValidationPipe } from '@nestjs/common';
import { Type } from 'class-transformer';
import {
  ArrayMinSize,
  IsArray,
  IsInt,
  IsString,
  Max,
  Min,
  ValidateNested,
  type ValidationError,
} from 'class-validator';

import { createValidationPipe, flattenValidationErrors } from './validation';

class LineDto {
  @IsString() sku!: string;
  @IsInt() @Min(1) @Max(1000) quantity!: number;
}

class OrderDto {
  @IsArray()
  @ArrayMinSize(1)
  @ValidateNested({ each: true })
  @Type(() => LineDto)
  items!: LineDto[];
}

async function messagesFor(pipe: ValidationPipe, body: unknown): Promise<string[]> {
  try {
    await pipe.transform(body, { type: 'body', metatype: OrderDto });
  } catch (error) {
    if (!(error instanceof BadRequestException)) throw error;
    return (error.getResponse() as { message: string[] }).message;
  }
  throw new Error('the body was accepted');
}

describe(createValidationPipe.name, () => {
  const pipe = createValidationPipe();

  describe('with a valid body', () => {
    it('returns instances of the DTO classes', async () => {
      const body = await pipe.transform(
        { items: [{ sku: 'tea', quantity: 2 }] },
        { type: 'body', metatype: OrderDto },
      );

      expect(body).toBeInstanceOf(OrderDto);
      expect((body as OrderDto).items[0]).toBeInstanceOf(LineDto);
      expect(body).toEqual({ items: [{ sku: 'tea', quantity: 2 }] });
    });
  });

  describe('with bad nested values', () => {
    it('names each field by its path, array indexes included', async () => {
      const messages = await messagesFor(pipe, {
        items: [
          { sku: 'tea', quantity: 2 },
          { sku: 'coffee', quantity: 1001 },
          { sku: 7, quantity: 0 },
        ],
      });

      expect(messages.sort()).toEqual(
        [
          'items.1.quantity must not be greater than 1000',
          'items.2.quantity must not be less than 1',
          'items.2.sku must be a string',
        ].sort(),
      );
    });

    it('does not convert the string "2" into an integer', async () => {
      const messages = await messagesFor(pipe, { items: [{ sku: 'tea', quantity: '2' }] });

      expect(messages).toContain('items.0.quantity must be an integer number');
    });
  });

  describe('with unknown properties', () => {
    it('refuses them at the top level', async () => {
      const messages = await messagesFor(pipe, { items: [{ sku: 'tea', quantity: 1 }], admin: 1 });

      expect(messages).toEqual(['admin: property admin should not exist']);
    });

    it('refuses them inside nested objects', async () => {
      const messages = await messagesFor(pipe, {
        items: [{ sku: 'tea', quantity: 1, unitPriceCents: 1 }],
      });

      expect(messages).toEqual([
        'items.0.unitPriceCents: property unitPriceCents should not exist',
      ]);
    });
  });

  describe('with very many bad values', () => {
    it('sends back the first 20 messages and how many more there were', async () => {
      const messages = await messagesFor(pipe, {
        items: Array.from({ length: 30 }, () => ({ sku: 7, quantity: 1 })),
      });

      expect(messages).toHaveLength(21);
      expect(messages[0]).toBe('items.0.sku must be a string');
      expect(messages[20]).toBe('and 10 more problems');
    });
  });

  describe('with a body that is not an object', () => {
    it.each([[[]], ['items'], [null]])('refuses %p', async (body) => {
      await expect(pipe.transform(body, { type: 'body', metatype: OrderDto })).rejects.toThrow(
        BadRequestException,
      );
    });
  });
});

describe(flattenValidationErrors.name, () => {
  const error = (
    property: string,
    constraints?: Record<string, string>,
    children: ValidationError[] = [],
  ): ValidationError => ({ property, constraints, children });

  it('prefixes messages that start with the property name with the full path', () => {
    const quantity = error('quantity', { isInt: 'quantity must be an integer number' });
    const tree = [error('items', undefined, [error('0', undefined, [quantity])])];

    expect(flattenValidationErrors(tree)).toEqual(['items.0.quantity must be an integer number']);
  });

  it('puts the path before messages that do not start with the property name', () => {
    const tree = [error('email', { custom: 'an account with this email exists' })];

    expect(flattenValidationErrors(tree)).toEqual(['email: an account with this email exists']);
  });

  it('keeps every message of every field, in order', () => {
    const tree = [
      error('sku', { isString: 'sku must be a string', isNotEmpty: 'sku should not be empty' }),
      error('quantity', { min: 'quantity must not be less than 1' }),
    ];

    expect(flattenValidationErrors(tree)).toEqual([
      'sku must be a string',
      'sku should not be empty',
      'quantity must not be less than 1',
    ]);
  });

  it('does not treat a longer property name as a prefix', () => {
    const tree = [error('sku', { custom: 'skus must be unique' })];

    expect(flattenValidationErrors(tree)).toEqual(['sku: skus must be unique']);
  });

  it('returns nothing for no errors', () => {
    expect(flattenValidationErrors([])).toEqual([]);
  });
});
