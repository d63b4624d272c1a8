import { createAsyncContext } from 'nestjs-async-endpoints/testing';
import { ExportOrdersHandler, OrdersClient, type ExportRequest } from './export-orders.js';

describe('ExportOrdersHandler', () => {
  const handler = new ExportOrdersHandler(new OrdersClient());

  it("exports the tenant's orders and reports progress", async () => {
    const { ctx, progress } = createAsyncContext<ExportRequest>({
      request: { format: 'csv' },
      headers: { 'X-Tenant-Id': 'acme' },
    });
    await expect(handler.handle(ctx)).resolves.toEqual({ format: 'csv', rows: 2, tenant: 'acme' });
    expect(progress).toEqual([50, 100]);
  });

  it('stops when the job is canceled', async () => {
    const { ctx, abort } = createAsyncContext<ExportRequest>({ request: { format: 'json' } });
    abort(new Error('canceled'));
    await expect(handler.handle(ctx)).rejects.toThrow('canceled');
  });
});
