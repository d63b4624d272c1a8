import { HttpCode, Inject, Req, Res, SetMetadata, UseFilters, UseGuards } from '@nestjs/common';
import { GUARDS_METADATA, PROPERTY_DEPS_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum.js';
import { JobSubmitter, SubmitChecks, type HttpRequest, type HttpResponse } from './job-submitter.js';
import { ProblemDetailsFilter } from './problem-details.js';

export const ASYNC_ENDPOINT_METADATA = 'async-endpoints:endpoint';

export interface AsyncEndpointMetadata {
  name: string;
}

const SUBMISSION = Symbol('async-endpoints:submission');

/**
 * What an `@AsyncEndpoint` method returns when it is called outside a request (a unit test calling
 * the controller): the payload it would store.
 */
export interface Submission {
  [SUBMISSION]: true;
  payload: unknown;
}

/** The controller property Nest injects the JobSubmitter into. */
const SUBMITTER = Symbol('async-endpoints:submitter');

/** The library's checks, a guard without dependencies: one instance for every route. */
const SUBMIT_CHECKS = new SubmitChecks();

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
    // The request and the response come as two more arguments, after the method's own (its parameter
    // decorators ran before this decorator); the method is called with its own only.
    const ownArguments = Math.max(original.length, lastDecoratedArgument(controller, key) + 1);
    let bodyIndex: number | undefined | null = null;
    const submit = async function (this: { [SUBMITTER]?: JobSubmitter }, ...args: unknown[]): Promise<unknown> {
      const returned = await original.apply(this, args.length > ownArguments ? args.slice(0, ownArguments) : args);
      if (bodyIndex === null) bodyIndex = wholeBodyParameterIndex(controller, key);
      const payload = returned !== undefined ? returned : bodyIndex === undefined ? {} : (args[bodyIndex] ?? {});
      const request = args[ownArguments] as HttpRequest | undefined;
      const submitter = this?.[SUBMITTER];
      if (!submitter || !request) return { [SUBMISSION]: true, payload } satisfies Submission;
      return submitter.submit(name, payload, request, args[ownArguments + 1] as HttpResponse);
    };
    // Route decorators applied before this one put their metadata on the original function.
    for (const metadataKey of Reflect.getMetadataKeys(original)) {
      Reflect.defineMetadata(metadataKey, Reflect.getMetadata(metadataKey, original), submit);
    }
    Object.defineProperty(submit, 'name', { value: original.name });
    descriptor.value = submit;
    Req()(target, key!, ownArguments);
    // Passthrough: Nest still sends what the method returns.
    Res({ passthrough: true })(target, key!, ownArguments + 1);
    injectSubmitter(target);
    SetMetadata<string, AsyncEndpointMetadata>(ASYNC_ENDPOINT_METADATA, { name })(target, key, descriptor);
    UseGuards(SUBMIT_CHECKS)(target, key, descriptor);
    UseFilters(ProblemDetailsFilter)(target, key, descriptor);
    HttpCode(202)(target, key, descriptor);
  };
}

/**
 * Nest runs a route's method guards in the order they were declared, so a guard declared above
 * `@AsyncEndpoint` would run after the library's checks. Called at boot, before the routes are
 * registered: the checks go last, after all of the route's guards, as documented.
 */
export function runSubmitChecksLast(handler: object): void {
  const guards = Reflect.getMetadata(GUARDS_METADATA, handler) as unknown[] | undefined;
  if (!guards?.includes(SUBMIT_CHECKS) || guards[guards.length - 1] === SUBMIT_CHECKS) return;
  Reflect.defineMetadata(GUARDS_METADATA, [...guards.filter((guard) => guard !== SUBMIT_CHECKS), SUBMIT_CHECKS], handler);
}

/** Once per controller class: Nest sets the JobSubmitter on each instance. */
function injectSubmitter(prototype: object): void {
  const properties = (Reflect.getMetadata(PROPERTY_DEPS_METADATA, prototype.constructor) ?? []) as { key: unknown }[];
  if (properties.some((property) => property.key === SUBMITTER)) return;
  Inject(JobSubmitter)(prototype, SUBMITTER);
}

type RouteArguments = Record<string, { index: number; data?: unknown }>;

function routeArguments(controller: object, key: string | symbol): RouteArguments {
  return (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, key) ?? {}) as RouteArguments;
}

function lastDecoratedArgument(controller: object, key: string | symbol): number {
  return Math.max(-1, ...Object.values(routeArguments(controller, key)).map((arg) => arg.index));
}

function wholeBodyParameterIndex(controller: object, key: string | symbol): number | undefined {
  for (const [argKey, arg] of Object.entries(routeArguments(controller, key))) {
    if (argKey.startsWith(`${RouteParamtypes.BODY}:`) && arg.data === undefined) return arg.index;
  }
  return undefined;
}
