/**
 * What Express responses and Fastify replies offer for the status and headers: Express has `status`
 * and `setHeader`, a Fastify reply `code` and `header`. The one shim over both.
 */
export interface HttpResponse {
  status?(code: number): unknown;
  code?(code: number): unknown;
  setHeader?(name: string, value: string): unknown;
  header?(name: string, value: string): unknown;
}

export function setResponseStatus(response: HttpResponse, code: number): void {
  if (response.status) response.status(code);
  else response.code?.(code);
}

export function setResponseHeader(response: HttpResponse, name: string, value: string): void {
  if (response.setHeader) response.setHeader(name, value);
  else response.header?.(name, value);
}
