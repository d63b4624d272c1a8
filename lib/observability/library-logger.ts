import { Logger } from '@nestjs/common';

/** The context of the library's log lines, one for all of them so that an app can filter them together. */
const LOG_CONTEXT = 'AsyncEndpoints';

/** A Nest logger under the library's context. */
export function libraryLogger(): Logger {
  return new Logger(LOG_CONTEXT);
}
