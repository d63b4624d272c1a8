import { Body, Controller, Injectable, Module, Post, ValidationPipe } from '@nestjs/common';
import { APP_PIPE } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { IsString, Length } from 'class-validator';
import {
  AsyncEndpoint,
  AsyncEndpointsModule,
  AsyncHandler,
  type AsyncContext,
  type AsyncEndpointHandler,
} from '../../lib/index.js';

export class ProcessRequest {
  @IsString() @Length(1, 1000) data!: string;
}

@Controller('api')
export class ProcessController {
  @Post('process')
  @AsyncEndpoint('Process')
  submit(@Body() _body: ProcessRequest) {
    // Optional pre-validation: throw an HttpException to reject; nothing is stored then.
  }
}

@AsyncHandler('Process', { requestType: ProcessRequest })
@Injectable()
export class ProcessHandler implements AsyncEndpointHandler<ProcessRequest, { processed: string }> {
  async handle({ request, reportProgress }: AsyncContext<ProcessRequest>) {
    await reportProgress(50);
    return { processed: request.data.toUpperCase() };
  }
}

@Module({
  imports: [
    ScheduleModule.forRoot(), // once, in your app
    AsyncEndpointsModule.forRoot({ store: { type: 'redis', url: process.env.REDIS_URL } }),
  ],
  controllers: [ProcessController],
  providers: [
    ProcessHandler,
    // Validates every request body against its class (here ProcessRequest) before a job is stored:
    // an invalid body gets 400 and no job.
    {
      provide: APP_PIPE,
      useValue: new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }),
    },
  ],
})
export class AppModule {}
