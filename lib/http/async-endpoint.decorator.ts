import { HttpCode, SetMetadata, UseFilters, UseInterceptors } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum.js';
import { ProblemDetailsFilter } from './problem-details.js';
import { SubmitInterceptor } from './submit.interceptor.js';

export const ASYNC_ENDPOINT_METADATA = 'async-endpoints:endpoint';

export interface AsyncEndpointMetadata {
  name: string;
}

const SUBMISSION = Symbol('async-endpoints:submission');

/** What an `@AsyncEndpoint` method hands the submit interceptor: the payload to store. */
export interface Submission {
  [SUBMISSION]: true;
  payload: unknown;
}

export function isSubmission(value: unknown): value is Submission {
  return typeof value === 'object' && value !== null && SUBMISSION in value;
}

/**
 * Turns a controller route into an asynchronous endpoint: guards, pipes and the method body
 * (pre-validation: throw an HttpException to reject) run as usual; then the job is stored and
 * the answer is `202 Accepted` with `Location`, `Retry-After` and the job document.
 *
 * The payload is the `@Body()` argument after the pipes ran (`{}` for routes without a body);
 * a method that returns a value stores that value instead.
 */
export function AsyncEndpoint(name: string): MethodDecorator {
  if (typeof name !== 'string' || name.trim() === '') {
    throw new TypeError('@AsyncEndpoint(name) needs a non-empty name, the one its @AsyncHandler(name) provider uses.');
  }
  return (target, key, descriptor: PropertyDescriptor) => {
    const original = descriptor.value as (...args: unknown[]) => unknown;
    const controller = target.constructor;
    const submit = async function (this: unknown, ...args: unknown[]): Promise<Submission> {
      const returned = await original.apply(this, args);
      const bodyIndex = wholeBodyParameterIndex(controller, key);
      const payload = returned !== undefined ? returned : bodyIndex === undefined ? {} : (args[bodyIndex] ?? {});
      return { [SUBMISSION]: true, payload };
    };
    // Route decorators applied before this one put their metadata on the original function.
    for (const metadataKey of Reflect.getMetadataKeys(original)) {
      Reflect.defineMetadata(metadataKey, Reflect.getMetadata(metadataKey, original), submit);
    }
    Object.defineProperty(submit, 'name', { value: original.name });
    descriptor.value = submit;
    SetMetadata<string, AsyncEndpointMetadata>(ASYNC_ENDPOINT_METADATA, { name })(target, key, descriptor);
    UseInterceptors(SubmitInterceptor)(target, key, descriptor);
    UseFilters(ProblemDetailsFilter)(target, key, descriptor);
    HttpCode(202)(target, key, descriptor);
  };
}

function wholeBodyParameterIndex(controller: object, key: string | symbol): number | undefined {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, key) ?? {}) as Record<
    string,
    { index: number; data?: unknown }
  >;
  for (const [argKey, arg] of Object.entries(args)) {
    if (argKey.startsWith(`${RouteParamtypes.BODY}:`) && arg.data === undefined) return arg.index;
  }
  return undefined;
}
