import { RequestMethod } from '@nestjs/common';
import {
  GUARDS_METADATA,
  METHOD_METADATA,
  PATH_METADATA,
  ROUTE_ARGS_METADATA,
  RouteParamtypes,
} from '@nestjs/common/internal';

/**
 * The only file that reads internals: Nest's route metadata (`@nestjs/common/internal`, which Nest keeps
 * for its own packages) and the settings of an Express app's router. Neither has a public API for
 * these reads; test/unit/nest-internals.adapter.spec.ts checks that each still exists and means what is
 * assumed here, so an upgrade that changes one fails there, by name, rather than in the HTTP tests.
 */

/** The paths a controller class is mounted at (`@Controller(path)`), `['/']` for none. */
export function controllerPaths(controller: object): string[] {
  return asPaths(Reflect.getMetadata(PATH_METADATA, controller));
}

/** A route method's HTTP method in upper case (`@Post()` → 'POST'), 'ALL' for `@All()`. */
export function routeMethod(handler: object): string {
  return RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod] ?? 'GET';
}

/** The paths of a route method (`@Post('items')`), `['/']` for none. */
export function routePaths(handler: object): string[] {
  return asPaths(Reflect.getMetadata(PATH_METADATA, handler));
}

/**
 * Nest runs a route's method guards in the order they were declared (`@UseGuards` appends), so a
 * guard declared above another decorator runs after the guards that decorator added. Moves `guard`
 * behind all of the route's guards; Nest reads them when it registers the route.
 */
export function moveGuardLast(handler: object, guard: object): void {
  const guards = Reflect.getMetadata(GUARDS_METADATA, handler) as unknown[] | undefined;
  if (!guards?.includes(guard) || guards[guards.length - 1] === guard) return;
  Reflect.defineMetadata(GUARDS_METADATA, [...guards.filter((each) => each !== guard), guard], handler);
}

/** What the parameter decorators of a route method (`@Body()`, `@Param()`, ...) declared. */
export interface RouteParameters {
  /** Index of the last decorated parameter, -1 for none. */
  lastIndex: number;
  /** Index of the `@Body()` parameter that receives the whole body, undefined for none. */
  wholeBodyIndex: number | undefined;
}

export function routeParameters(controller: object, key: string | symbol): RouteParameters {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, key) ?? {}) as Record<
    string,
    { index: number; data?: unknown }
  >;
  let lastIndex = -1;
  let wholeBodyIndex: number | undefined;
  // Keys are `<RouteParamtypes>:<index>` (custom decorators add a suffix to the type).
  for (const [argKey, arg] of Object.entries(args)) {
    lastIndex = Math.max(lastIndex, arg.index);
    if (argKey.startsWith(`${RouteParamtypes.BODY}:`) && arg.data === undefined) wholeBodyIndex ??= arg.index;
  }
  return { lastIndex, wholeBodyIndex };
}

function asPaths(value: unknown): string[] {
  if (value === undefined || value === null) return ['/'];
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

/**
 * How an Express app's router matches paths: its `case sensitive routing` and `strict routing` settings
 * as the router took them when it was created (lazily, by the first route; a later `app.set()` does not
 * change it). Read from the router's own properties, which Express does not document.
 */
export function expressRouterSettings(app: object): { caseSensitive: boolean; strict: boolean } {
  const { caseSensitive, strict } = (app as { router: { caseSensitive?: unknown; strict?: unknown } }).router;
  return { caseSensitive: caseSensitive === true, strict: strict === true };
}
