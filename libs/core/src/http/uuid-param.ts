import { BadRequestException, ParseUUIDPipe } from '@nestjs/common';

/** Validates a path id as a UUID before any query runs. */
export function uuidParam(name = 'id'): ParseUUIDPipe {
  return new ParseUUIDPipe({
    exceptionFactory: () => new BadRequestException([`${name} must be a UUID`]),
  });
}
