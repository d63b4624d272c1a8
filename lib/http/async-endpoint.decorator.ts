import { applyDecorators, HttpCode, Inject, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { JobSubmitter, type HttpRequest, type HttpResponse } from './job-submitter.js';
import { SubmitChecks } from './submit-checks.guard.js';
import { moveGuardLast, routeParameters } from './nest-internals.adapter.js';
import { ProblemDetailsFilter } from './problem-details.filter.js';

export interface AsyncEndpointMetadata {
  name: string;
}

/** Discoverable marker of `@AsyncEndpoint` methods (DiscoveryService.createDecorator). */
export const AsyncEndpointMarker = DiscoveryService.createDecorator<AsyncEndpointMetadata>();

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
  // In this order: the others put their metadata on the method that submits.
  return applyDecorators(
    SubmitFromMethod(name),
    AsyncEndpointMarker({ name }),
    UseGuards(SUBMIT_CHECKS),
    UseFilters(ProblemDetailsFilter),
    HttpCode(202),
  ) as MethodDecorator;
}

/**
 * The method submits the job itself, not an interceptor: any interceptor puts every request of the
 * route through Nest's rxjs pipeline (a no-op one cost ~25 µs of CPU per submit). It gets the
 * request and the response as two more arguments, after its own (its parameter decorators ran
 * before this decorator), and calls the original method with its own only.
 */
function SubmitFromMethod(name: string): MethodDecorator {
  return (target, key, descriptor: PropertyDescriptor) => {
    const original = descriptor.value as (...args: unknown[]) => unknown;
    const controller = target.constructor;
    const ownArguments = Math.max(original.length, routeParameters(controller, key).lastIndex + 1);
    let bodyIndex: number | undefined | null = null;
    const submit = async function (this: { [SUBMITTER]?: JobSubmitter }, ...args: unknown[]): Promise<unknown> {
      const returned = await original.apply(this, args.length > ownArguments ? args.slice(0, ownArguments) : args);
      if (bodyIndex === null) bodyIndex = routeParameters(controller, key).wholeBodyIndex;
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
    Req()(target, key, ownArguments);
    // Passthrough: Nest still sends what the method returns.
    Res({ passthrough: true })(target, key, ownArguments + 1);
    injectSubmitter(target);
  };
}

/**
 * A guard declared above `@AsyncEndpoint` would run after the library's checks. Called at boot,
 * before the routes are registered: the checks go last, after all of the route's guards, as documented.
 */
export function runSubmitChecksLast(handler: object): void {
  moveGuardLast(handler, SUBMIT_CHECKS);
}

/** Controller prototypes given the JobSubmitter property. */
const withSubmitter = new WeakSet<object>();

/** Once per controller class (a subclass inherits it): Nest sets the JobSubmitter on each instance. */
function injectSubmitter(prototype: object): void {
  for (let proto: object | null = prototype; proto; proto = Object.getPrototypeOf(proto) as object | null) {
    if (withSubmitter.has(proto)) return;
  }
  withSubmitter.add(prototype);
  Inject(JobSubmitter)(prototype, SUBMITTER);
}
