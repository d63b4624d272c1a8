import { Controller, Injectable, Post } from '@nestjs/common';
import { AsyncEndpoint, AsyncHandler, type AsyncContext, type AsyncEndpointHandler } from '../lib/index.js';

export interface Report {
  title: string;
  generatedAt: string;
  rows: { region: string; orders: number }[];
  requestedBy: string | null;
}

@Controller('api')
export class ReportController {
  @Post('generate-report')
  @AsyncEndpoint('GenerateReport')
  submit(): void {
    // No body: the payload is {}.
  }
}

@AsyncHandler('GenerateReport')
@Injectable()
export class ReportHandler implements AsyncEndpointHandler<Record<string, never>, Report> {
  async handle({ headers, reportProgress }: AsyncContext<Record<string, never>>): Promise<Report> {
    const regions = ['north', 'east', 'south', 'west'];
    const rows: Report['rows'] = [];
    for (const [index, region] of regions.entries()) {
      rows.push({ region, orders: 100 + index * 25 });
      await reportProgress(Math.round(((index + 1) / regions.length) * 100));
    }
    return {
      title: 'Orders by region',
      generatedAt: new Date().toISOString(),
      rows,
      requestedBy: headers.get('x-user-id') ?? null,
    };
  }
}
