import { invalidOptions, SCHEDULE_MODULE_MISSING } from './messages.js';

/** Thrown at boot for an invalid option; the message names each option, its value and the rule. */
export class InvalidAsyncEndpointsOptionsError extends Error {
  constructor(readonly problems: string[]) {
    super(invalidOptions(problems));
    this.name = 'InvalidAsyncEndpointsOptionsError';
  }
}

/** Thrown at boot for handler declarations that cannot work; the message says which and how to fix. */
export class AsyncHandlerDeclarationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AsyncHandlerDeclarationError';
  }
}

/** Thrown at boot when the app did not import `ScheduleModule.forRoot()`. */
export class ScheduleModuleMissingError extends Error {
  constructor() {
    super(SCHEDULE_MODULE_MISSING);
    this.name = 'ScheduleModuleMissingError';
  }
}
