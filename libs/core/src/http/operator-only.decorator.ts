import { SetMetadata } from '@nestjs/common';

export const OPERATOR_ONLY = 'portcullis:operatorOnly';

/**
 * Marks a route for operators: the global guard admits the scrape token (the secret
 * `metrics.token`) or an access token of an admin, and nobody else.
 */
export const OperatorOnly = (): MethodDecorator & ClassDecorator =>
  SetMetadata(OPERATOR_ONLY, true);
