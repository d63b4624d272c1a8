import { jest } from '@jest/globals';
import { settlesWithin } from '../../lib/timers/settles-within.js';

/**
 * settlesWithin bounds a shutdown step (a worker's drain, its unregistration). Its timer must go however
 * the step ends: one left behind held the process open for up to shutdownTimeoutMs after app.close().
 */
describe('settlesWithin', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('resolves true when the promise resolves first, and leaves no timer', async () => {
    await expect(settlesWithin(Promise.resolve('done'), 30_000)).resolves.toBe(true);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('resolves false once the time passes, and leaves no timer', async () => {
    const result = settlesWithin(new Promise(() => {}), 30_000);
    await jest.advanceTimersByTimeAsync(30_000);
    await expect(result).resolves.toBe(false);
    expect(jest.getTimerCount()).toBe(0);
  });

  it("rejects with the promise's error when it rejects first, and leaves no timer", async () => {
    const failure = new Error('the redis job store is unavailable');
    await expect(settlesWithin(Promise.reject(failure), 30_000)).rejects.toBe(failure);
    expect(jest.getTimerCount()).toBe(0);
  });
});
