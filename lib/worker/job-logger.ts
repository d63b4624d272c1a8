import { Logger, type LoggerService } from '@nestjs/common';
import type { Job } from '../job/index.js';

/** Nest's Logger with every line tagged by job name and id; never payloads or headers. */
export class JobLogger implements LoggerService {
  private readonly logger = new Logger('AsyncEndpoints');
  private readonly tag: string;

  constructor(job: Pick<Job, 'id' | 'name'>) {
    this.tag = `[${job.name} ${job.id}]`;
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
