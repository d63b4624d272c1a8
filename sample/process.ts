import { Body, Controller, Injectable, Post } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';
import { AsyncEndpoint, AsyncHandler, type AsyncContext, type AsyncEndpointHandler } from '../lib/index.js';

export class ProcessRequest {
  @ApiProperty({ minLength: 1, maxLength: 1000, example: 'hello world' })
  @IsString()
  @Length(1, 1000)
  data!: string;

  @ApiPropertyOptional({ minimum: 0, maximum: 60_000, default: 100, description: 'How long the handler works, in ms.' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(60_000)
  delayMs?: number;
}

export interface ProcessResult {
  processed: string;
  length: number;
}

@Controller('api')
export class ProcessController {
  @Post('process')
  @AsyncEndpoint('Process')
  submit(@Body() _body: ProcessRequest): void {
    // The validated body becomes the job's payload; nothing else to check here.
  }
}

@AsyncHandler('Process', { requestType: ProcessRequest })
@Injectable()
export class ProcessHandler implements AsyncEndpointHandler<ProcessRequest, ProcessResult> {
  async handle({ request, signal }: AsyncContext<ProcessRequest>): Promise<ProcessResult> {
    await delay(request.delayMs ?? 100, signal);
    return { processed: request.data.toUpperCase(), length: request.data.length };
  }
}

/** Resolves after `ms`, or rejects as soon as the signal aborts. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
