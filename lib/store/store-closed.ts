/** The `code` of the error a closed store throws: the service answers it as an unavailable store (503). */
export const STORE_CLOSED = 'STORE_CLOSED';

/** What a call to a store after its close() throws (a request that came in while the app shuts down). */
export function storeClosedError(type: string): Error {
  return Object.assign(new Error(`The ${type} job store is closed (the application is shutting down).`), {
    code: STORE_CLOSED,
  });
}
