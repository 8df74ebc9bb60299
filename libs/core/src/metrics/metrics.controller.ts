import { Controller, Get, Header } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiForbiddenResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { register } from 'prom-client';

import { ErrorBody } from '../http/error-body';
import { OperatorOnly } from '../http/operator-only.decorator';

@ApiTags('operations')
@Controller('metrics')
export class MetricsController {
  @Get()
  @OperatorOnly()
  @Header('content-type', register.contentType)
  @Header('cache-control', 'no-store')
  @ApiOperation({
    summary: 'Prometheus metrics. Operators only: the scrape token or an admin access token',
    description:
      'Send `Authorization: Bearer <token>` with the secret `metrics.token` (what Prometheus ' +
      'uses) or an admin access token. Not for the internet: the gateway does not forward it.',
  })
  @ApiBearerAuth()
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'Prometheus text exposition format', type: String })
  @ApiUnauthorizedResponse({ type: ErrorBody, description: 'No scrape token and no valid token' })
  @ApiForbiddenResponse({ type: ErrorBody, description: 'A valid token of someone not admin' })
  async scrape(): Promise<string> {
    return register.metrics();
  }
}
