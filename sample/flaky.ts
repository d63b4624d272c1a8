import { Body, Controller, Injectable, Post } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { IsInt, Max, Min } from 'class-validator';
import { AsyncEndpoint, AsyncHandler, type AsyncContext, type AsyncEndpointHandler } from '../lib/index.js';

export class FlakyRequest {
  @ApiProperty({ minimum: 0, maximum: 10, description: 'How many attempts fail before one succeeds.' })
  @IsInt()
  @Min(0)
  @Max(10)
  failTimes!: number;
}

/** Public (`expose`): its message is written for the client, so the job document shows it. */
export class FlakyError extends Error {
  readonly code = 'FLAKY_FAILURE';
  readonly expose = true;
}

@Controller('api')
export class FlakyController {
  @Post('flaky')
  @AsyncEndpoint('Flaky')
  submit(@Body() _body: FlakyRequest): void {}
}

/** Fails its first `failTimes` attempts, then succeeds: retries and backoff to watch. */
@AsyncHandler('Flaky')
@Injectable()
export class FlakyHandler implements AsyncEndpointHandler<FlakyRequest, { succeededOnAttempt: number }> {
  async handle({ request, job }: AsyncContext<FlakyRequest>): Promise<{ succeededOnAttempt: number }> {
    if (job.attempt <= request.failTimes) {
      throw new FlakyError(`Attempt ${job.attempt} fails on purpose (failTimes: ${request.failTimes})`);
    }
    return { succeededOnAttempt: job.attempt };
  }
}
