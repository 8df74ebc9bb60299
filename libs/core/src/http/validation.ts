import { BadRequestException, ValidationPipe } from '@nestjs/common';
import type { ValidationError } from 'class-validator';

/**
 * The global validation pipe: unknown properties are refused, nested objects and arrays are
 * validated, and no value is converted implicitly ("2" is not a number).
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    validationError: { target: false, value: false },
    stopAtFirstError: false,
    exceptionFactory: (errors) =>
      new BadRequestException(capMessages(flattenValidationErrors(errors))),
  });
}

/** Most validation messages sent back at once, so a huge bad body cannot amplify its answer. */
export const MAX_VALIDATION_MESSAGES = 20;

function capMessages(messages: string[]): string[] {
  if (messages.length <= MAX_VALIDATION_MESSAGES) return messages;
  const shown = messages.slice(0, MAX_VALIDATION_MESSAGES);
  return [...shown, `and ${messages.length - shown.length} more problems`];
}

/** Turns class-validator's tree into messages that start with the field path. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): string[] {
  const messages: string[] = [];
  for (const error of errors) {
    const path = parent ? `${parent}.${error.property}` : error.property;
    for (const text of Object.values(error.constraints ?? {})) {
      messages.push(
        text.startsWith(`${error.property} `)
          ? `${path}${text.slice(error.property.length)}`
          : `${path}: ${text}`,
      );
    }
    if (error.children?.length) messages.push(...flattenValidationErrors(error.children, path));
  }
  return messages;
}
