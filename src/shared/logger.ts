import { Writable } from 'node:stream';
import winston from 'winston';
import { currentCorrelationId } from './request-context';

export type Logger = winston.Logger;

const addCorrelationId = winston.format((info) => {
  const correlationId = currentCorrelationId();
  if (correlationId && info.correlationId === undefined) info.correlationId = correlationId;
  return info;
});

/**
 * stdout, written once per event-loop turn: a busy process logs many lines per turn, and one
 * write for the lot costs far less than hundreds (each is a system call). Whatever is still
 * buffered is written at exit (stdout to a file or pipe is synchronous on Linux). One buffer per
 * process, shared by every logger: lines keep their order and there is one exit hook.
 */
let sharedStdout: Writable | undefined;
function createBufferedStdout(): Writable {
  let lines: string[] = [];
  let bytes = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (lines.length === 0) return;
    const text = lines.join('');
    lines = [];
    bytes = 0;
    process.stdout.write(text);
  };
  process.on('exit', flush);
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      const line = chunk.toString();
      lines.push(line);
      bytes += line.length;
      if (bytes >= 1 << 20) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
      callback();
    },
  });
}

/**
 * The one logger factory. JSON lines unless stdout is a terminal outside production;
 * components take `logger.child({ component })`.
 */
export function createLogger(options: { level: string; pretty?: boolean; stream?: NodeJS.WritableStream }): Logger {
  const pretty = options.pretty ?? false;
  const format = pretty
    ? winston.format.combine(addCorrelationId(), winston.format.timestamp(), winston.format.colorize(), winston.format.simple())
    : winston.format.combine(addCorrelationId(), winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json());
  const transport = new winston.transports.Stream({ stream: options.stream ?? (sharedStdout ??= createBufferedStdout()) });
  return winston.createLogger({ level: options.level, format, transports: [transport] });
}
