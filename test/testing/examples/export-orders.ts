import { Body, Controller, Injectable, Post } from '@nestjs/common';
import { IsIn } from 'class-validator';
import { AsyncEndpoint, AsyncHandler, type AsyncContext, type AsyncEndpointHandler } from 'nestjs-async-endpoints';

export class ExportRequest {
  @IsIn(['csv', 'json']) format!: 'csv' | 'json';
}

export interface ExportResult {
  format: string;
  rows: number;
  tenant: string;
}

/** Where the orders come from: a database or another service in a real app. */
@Injectable()
export class OrdersClient {
  async fetchOrders(tenant: string): Promise<{ id: string; total: number }[]> {
    return [
      { id: `${tenant}-1`, total: 42 },
      { id: `${tenant}-2`, total: 7 },
    ];
  }
}

@Controller('exports')
export class ExportController {
  @Post()
  @AsyncEndpoint('ExportOrders')
  submit(@Body() _body: ExportRequest): void {}
}

@AsyncHandler('ExportOrders', { requestType: ExportRequest })
@Injectable()
export class ExportOrdersHandler implements AsyncEndpointHandler<ExportRequest, ExportResult> {
  constructor(private readonly orders: OrdersClient) {}

  async handle({ request, headers, signal, reportProgress }: AsyncContext<ExportRequest>): Promise<ExportResult> {
    const tenant = headers.get('x-tenant-id') ?? 'default';
    const orders = await this.orders.fetchOrders(tenant);
    await reportProgress(50);
    // Canceled or timed out meanwhile: stop here.
    signal.throwIfAborted();
    await reportProgress(100);
    return { format: request.format, rows: orders.length, tenant };
  }
}
