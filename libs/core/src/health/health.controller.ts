import { Controller, Get, HttpCode, ServiceUnavailableException } from '@nestjs/common';
import {
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import {
  type HealthCheckResult,
  HealthCheckService,
  type HealthIndicatorFunction,
  HealthIndicatorService,
} from '@nestjs/terminus';

import { Public } from '../http/public.decorator';
import { ErrorBody } from '../http/error-body';
import { HealthRegistry } from './health.registry';

class HealthReportDto {
  @ApiProperty({ enum: ['ok'] })
  status!: 'ok';

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string', enum: ['up', 'down'] },
    example: { 'database:orders': 'up', 'bus:orders': 'up' },
  })
  checks!: Record<string, 'up' | 'down'>;
}

/**
 * Liveness and readiness, public because they say no more than up or down. Liveness needs
 * nothing but the process; readiness runs every check in the {@link HealthRegistry}
 * (databases, the bus) through terminus.
 */
@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(
    private readonly registry: HealthRegistry,
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
  ) {}

  @Get()
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Readiness (as /health/ready): every database and the bus answer' })
  @ApiOkResponse({ type: HealthReportDto })
  @ApiServiceUnavailableResponse({ type: ErrorBody })
  check(): Promise<HealthReportDto> {
    return this.ready();
  }

  @Get('live')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Liveness: the process answers; no dependency is checked' })
  @ApiOkResponse({ type: HealthReportDto })
  async live(): Promise<HealthReportDto> {
    return report(await this.health.check([() => this.indicators.check('process').up()]));
  }

  @Get('ready')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Readiness: every database and the message bus answer' })
  @ApiOkResponse({ type: HealthReportDto })
  @ApiServiceUnavailableResponse({ type: ErrorBody })
  async ready(): Promise<HealthReportDto> {
    const outcome = await this.registry.run();
    const indicators: HealthIndicatorFunction[] = Object.entries(outcome.checks).map(
      ([name, state]) =>
        () => {
          const indicator = this.indicators.check(name);
          return state === 'up' ? indicator.up() : indicator.down();
        },
    );
    try {
      return report(await this.health.check(indicators));
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      const down = Object.entries(outcome.checks)
        .filter(([, state]) => state === 'down')
        .map(([name]) => `${name} is down`);
      throw new ServiceUnavailableException(down);
    }
  }
}

function report(result: HealthCheckResult): HealthReportDto {
  const checks: Record<string, 'up' | 'down'> = {};
  for (const [name, detail] of Object.entries(result.details)) {
    checks[name] = detail.status === 'up' ? 'up' : 'down';
  }
  return { status: 'ok', checks };
}
