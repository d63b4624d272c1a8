import { Logger, type LoggerService } from '@nestjs/common';
import type { Job } from '../job/index.js';

const logger = new Logger('AsyncEndpoints');

/**
 * Nest's Logger with every line tagged by job name and id; never payloads or headers. One per attempt:
 * it costs nothing until it writes a line.
 */
export class JobLogger implements LoggerService {
  private readonly logger = logger;

  constructor(private readonly job: Pick<Job, 'id' | 'name'>) {}

  private get tag(): string {
    return `[${this.job.name} ${this.job.id}]`;
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.logger.log(`${this.tag} ${String(message)}`, ...rest);
  }

  error(message: unknown, ...rest: unknown[]): void {
    this.logger.error(`${this.tag} ${String(message)}`, ...rest);
  }

  warn(message: unknown, ...rest: unknown[]): void {
    this.logger.warn(`${this.tag} ${String(message)}`, ...rest);
  }

  debug(message: unknown, ...rest: unknown[]): void {
    this.logger.debug(`${this.tag} ${String(message)}`, ...rest);
  }

  verbose(message: unknown, ...rest: unknown[]): void {
    this.logger.verbose(`${this.tag} ${String(message)}`, ...rest);
  }
}
