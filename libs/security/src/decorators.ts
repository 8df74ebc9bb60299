import { ExecutionContext, SetMetadata, createParamDecorator } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { applyDecorators } from '@nestjs/common';

import type { Role } from '@portcullis/contracts';
import { type Actor, ErrorBody } from '@portcullis/core';

export { Public, IS_PUBLIC } from '@portcullis/core';

export const REQUIRED_ROLES = 'portcullis:roles';

/** Allows the handler only to actors holding at least one of the roles. */
export const Roles = (...roles: Role[]): MethodDecorator & ClassDecorator =>
  SetMetadata(REQUIRED_ROLES, roles);

/** Documents a route as needing a bearer access token, with its 401 and 403 answers. */
export const BearerAuth = (): MethodDecorator & ClassDecorator =>
  applyDecorators(
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ type: ErrorBody, description: 'Missing, invalid or revoked token' }),
    ApiForbiddenResponse({ type: ErrorBody, description: 'The caller lacks the required role' }),
  );

/** The verified actor of the request, as established by the global guard. */
export const CurrentActor = createParamDecorator((_: unknown, context: ExecutionContext): Actor => {
  const request = context.switchToHttp().getRequest<{ user?: Actor }>();
  if (!request.user) throw new Error('CurrentActor used on a route without an authenticated actor');
  return request.user;
});
