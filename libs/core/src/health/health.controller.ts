import { Controller, Get, HttpCode, ServiceUnavailableException } from '@nestjs/common';
import {
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';

import { Public } from '../http/public.decorator';
import { ErrorBody } from '../http/error-body';
import { HealthRegistry } from './health.registry';

class HealthReportDto {
  @ApiProperty({ enum: ['ok'] })
  status!: 'ok';

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string', enum: ['up', 'down'] },
    example: { 'database:orders': 'up', bus: 'up' },
  })
  checks!: Record<string, 'up' | 'down'>;
}

@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(private readonly registry: HealthRegistry) {}

  @Get()
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Readiness: every database and the message bus answer' })
  @ApiOkResponse({ type: HealthReportDto })
  @ApiServiceUnavailableResponse({ type: ErrorBody })
  async check(): Promise<HealthReportDto> {
    const report = await this.registry.run();
    if (report.status !== 'ok') {
      const down = Object.entries(report.checks)
        .filter(([, state]) => state === 'down')
        .map(([name]) => `${name} is down`);
      throw new ServiceUnavailableException(down);
    }
    return report as HealthReportDto;
  }
}
