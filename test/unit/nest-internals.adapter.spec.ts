import {
  All,
  Body,
  type CanActivate,
  Controller,
  createParamDecorator,
  Get,
  Param,
  Post,
  Put,
  Req,
  RequestMethod,
  UseGuards,
} from '@nestjs/common';
import { GUARDS_METADATA } from '@nestjs/common/internal';
import { MetadataScanner, NestContainer } from '@nestjs/core';
import { GuardsContextCreator } from '@nestjs/core/guards/guards-context-creator.js';
import { PathsExplorer } from '@nestjs/core/router/paths-explorer.js';
import express from 'express';
import {
  controllerPaths,
  expressRouterSettings,
  moveGuardLast,
  routeMethod,
  routeParameters,
  routePaths,
} from '../../lib/http/nest-internals.adapter.js';

/*
 * The adapter reads what Nest's public decorators write, under keys Nest keeps internal. These tests
 * write with the public decorators and read with the adapter: a Nest upgrade that renames a key or
 * changes what it holds fails here, naming the read that broke.
 */

class AllowAll implements CanActivate {
  constructor(readonly name: string) {}

  canActivate(): boolean {
    return true;
  }
}
const first = new AllowAll('first');
const last = new AllowAll('last');
const Tenant = createParamDecorator(() => 'acme');

@Controller('items')
class ItemsController {
  @Post()
  create() {}

  @Put(['a', 'b/:id'])
  replace() {}

  @All('any')
  any() {}

  @Get('one/:id')
  read(@Param('id') _id: string, @Body() _body: unknown, @Body('x') _x: unknown, @Tenant() _tenant: string) {}

  @Get()
  plain(@Req() _request: unknown) {}

  @UseGuards(first)
  @UseGuards(last)
  guarded() {}
}

@Controller(['v1', 'v2'])
class TwoPathsController {}

class NotAController {}

const handler = (name: keyof ItemsController) => ItemsController.prototype[name] as (...args: unknown[]) => unknown;

describe('Nest internals adapter (fails on a Nest upgrade that changes route metadata)', () => {
  it('controllerPaths reads the path(s) @Controller wrote, / for a class without one', () => {
    expect(controllerPaths(ItemsController)).toEqual(['items']);
    expect(controllerPaths(TwoPathsController)).toEqual(['v1', 'v2']);
    expect(controllerPaths(NotAController)).toEqual(['/']);
  });

  it('routeMethod reads the HTTP method a route decorator wrote, in upper case', () => {
    expect(routeMethod(handler('create'))).toBe('POST');
    expect(routeMethod(handler('replace'))).toBe('PUT');
    expect(routeMethod(handler('any'))).toBe('ALL');
    expect(routeMethod(handler('read'))).toBe('GET');
  });

  it('routePaths reads the path(s) a route decorator wrote, / for @Get()', () => {
    expect(routePaths(handler('read'))).toEqual(['one/:id']);
    expect(routePaths(handler('replace'))).toEqual(['a', 'b/:id']);
    expect(routePaths(handler('plain'))).toEqual(['/']);
  });

  it('routeParameters finds the last decorated parameter (custom ones too) and the whole-body @Body()', () => {
    expect(routeParameters(ItemsController, 'read')).toEqual({ lastIndex: 3, wholeBodyIndex: 1 });
    expect(routeParameters(ItemsController, 'plain')).toEqual({ lastIndex: 0, wholeBodyIndex: undefined });
    expect(routeParameters(ItemsController, 'create')).toEqual({ lastIndex: -1, wholeBodyIndex: undefined });
  });

  it("reads each route's method and paths as Nest's router does (PathsExplorer)", () => {
    const nestRoutes = new PathsExplorer(new MetadataScanner()).scanForPaths(new ItemsController());
    expect(nestRoutes.length).toBeGreaterThan(0);
    for (const route of nestRoutes) {
      const method = handler(route.methodName as keyof ItemsController);
      expect(routeMethod(method)).toBe(RequestMethod[route.requestMethod]);
      expect(routePaths(method).map((path) => (path.startsWith('/') ? path : `/${path}`))).toEqual(route.path);
    }
  });

  it('moveGuardLast changes the order in which Nest runs the guards of a route (the lower decorator first)', () => {
    const guarded = handler('guarded');
    const nestGuards = () =>
      new GuardsContextCreator(new NestContainer()).create(new ItemsController(), guarded, 'module');
    expect(nestGuards()).toEqual([last, first]);
    moveGuardLast(guarded, last);
    expect(nestGuards()).toEqual([first, last]);
    expect(Reflect.getMetadata(GUARDS_METADATA, guarded)).toEqual([first, last]);
  });

  it("expressRouterSettings reads an Express app's 'case sensitive routing' and 'strict routing' as its router took them", () => {
    expect(expressRouterSettings(express())).toEqual({ caseSensitive: false, strict: false });
    const strictApp = express();
    strictApp.set('case sensitive routing', true);
    strictApp.set('strict routing', true);
    expect(expressRouterSettings(strictApp)).toEqual({ caseSensitive: true, strict: true });
  });
});
