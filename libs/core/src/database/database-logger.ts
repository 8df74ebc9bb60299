import { Logger } from '@nestjs/common';
import type { Logger as TypeOrmLogger } from 'typeorm';

/** The first characters of a statement that a log line keeps. */
const STATEMENT_CHARS = 160;

/**
 * TypeORM's messages in the service's own log, as JSON like every other line, and never with
 * a statement's parameters. TypeORM's console logger prints a failed statement with them, and
 * they can hold a password hash, a sealed field or a customer's data; here a failure keeps
 * what identifies it (the SQLSTATE code, the constraint, the start of the statement's text,
 * which carries no values) and PostgreSQL's message, but not its `detail`, which repeats the
 * values of the row that failed, nor the input a data exception's message quotes. Queries
 * themselves are not logged.
 */
export class DatabaseLogger implements TypeOrmLogger {
  private readonly logger = new Logger('Database');

  logQuery(): void {
    // Every statement would cost a line.
  }

  logQueryError(error: string | Error, query: string): void {
    // TypeORM calls this before it throws the failure: a throw here would replace it.
    try {
      const failure = (typeof error === 'string' ? { message: error } : (error ?? {})) as {
        message?: unknown;
        code?: unknown;
        constraint?: unknown;
      };
      const code = typeof failure.code === 'string' ? failure.code : undefined;
      this.logger.warn({
        msg: 'statement failed',
        code,
        constraint: typeof failure.constraint === 'string' ? failure.constraint : undefined,
        error: messageOf(failure.message, code),
        statement: oneLine(String(query)).slice(0, STATEMENT_CHARS),
      });
    } catch {
      // Logging must not change what the caller is told.
    }
  }

  logQuerySlow(time: number, query: string): void {
    this.logger.warn({
      msg: 'slow statement',
      durationMs: time,
      statement: oneLine(query).slice(0, STATEMENT_CHARS),
    });
  }

  logSchemaBuild(): void {
    // Schemas are built by migrations only, which log themselves.
  }

  logMigration(message: string): void {
    this.logger.log({ msg: 'migration', detail: message });
  }

  log(level: 'log' | 'info' | 'warn', message: unknown): void {
    if (level === 'warn') this.logger.warn({ msg: 'database warning', detail: String(message) });
  }
}

/**
 * PostgreSQL's message, without the quoted input of a data exception (SQLSTATE class 22,
 * "invalid input syntax for type uuid: \"...\""), which is a value the statement was given.
 */
function messageOf(message: unknown, code: string | undefined): string | undefined {
  if (typeof message !== 'string') return undefined;
  return code?.startsWith('22') ? message.replace(/"[^"]*"/g, '"[value]"') : message;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
