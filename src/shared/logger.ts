import winston from 'winston';
import { currentCorrelationId } from './request-context';

export type Logger = winston.Logger;

const addCorrelationId = winston.format((info) => {
  const correlationId = currentCorrelationId();
  if (correlationId && info.correlationId === undefined) info.correlationId = correlationId;
  return info;
});

/**
 * The one logger factory. JSON lines unless stdout is a terminal outside production;
 * components take `logger.child({ component })`.
 */
export function createLogger(options: { level: string; pretty?: boolean; stream?: NodeJS.WritableStream }): Logger {
  const pretty = options.pretty ?? false;
  const format = pretty
    ? winston.format.combine(addCorrelationId(), winston.format.timestamp(), winston.format.colorize(), winston.format.simple())
    : winston.format.combine(addCorrelationId(), winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json());
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  return winston.createLogger({ level: options.level, format, transports: [transport] });
}
