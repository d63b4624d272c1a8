import { Logger } from '@nestjs/common';
import { escapeControlCharacters, escapeStack } from './log-text.js';

/** The context of the library's log lines, one for all of them so that an app can filter them together. */
const LOG_CONTEXT = 'AsyncEndpoints';

/** A line's message with its control characters escaped; fields (objects) as given. */
const escapedMessage = (message: unknown): unknown =>
  typeof message === 'string' ? escapeControlCharacters(message) : message;

/** Further arguments: text (a stack, a context) escaped as stacks are, one line per frame; others as given. */
const escapedRest = (rest: unknown[]): unknown[] =>
  rest.length === 0 ? rest : rest.map((value) => (typeof value === 'string' ? escapeStack(value) : value));

/**
 * Nest's Logger under the library's context, escaping what it is given: a log line may carry text from a
 * request or a handler (an error message), which raw could forge a line or recolour a terminal.
 */
class LibraryLogger extends Logger {
  override log(message: unknown, ...rest: unknown[]): void {
    super.log(escapedMessage(message), ...escapedRest(rest));
  }

  override error(message: unknown, ...rest: unknown[]): void {
    super.error(escapedMessage(message), ...escapedRest(rest));
  }

  override warn(message: unknown, ...rest: unknown[]): void {
    super.warn(escapedMessage(message), ...escapedRest(rest));
  }

  override debug(message: unknown, ...rest: unknown[]): void {
    super.debug(escapedMessage(message), ...escapedRest(rest));
  }

  override verbose(message: unknown, ...rest: unknown[]): void {
    super.verbose(escapedMessage(message), ...escapedRest(rest));
  }
}

/** A Nest logger under the library's context, which escapes control characters in what it writes. */
export function libraryLogger(): Logger {
  return new LibraryLogger(LOG_CONTEXT);
}
