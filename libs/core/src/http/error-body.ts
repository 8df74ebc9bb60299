import { ApiProperty } from '@nestjs/swagger';
import { STATUS_CODES } from 'node:http';

/** The one shape of every error response, over HTTP and in message replies. */
export class ErrorBody {
  @ApiProperty({ example: 400 })
  statusCode!: number;

  @ApiProperty({ example: 'Bad Request' })
  error!: string;

  @ApiProperty({
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
    example: ['items.0.quantity must not be greater than 1000'],
  })
  message!: string | string[];

  @ApiProperty({ example: '5f0c8f7e-2b8a-4a53-9d6f-0c1c2f0f4b9a' })
  correlationId!: string;
}

export function errorBody(
  statusCode: number,
  message: string | string[],
  correlationId: string,
): ErrorBody {
  return {
    statusCode,
    error: STATUS_CODES[statusCode] ?? 'Error',
    message,
    correlationId,
  };
}
