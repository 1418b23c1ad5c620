import type { Logger } from './logger';

interface Step {
  name: string;
  run: () => Promise<unknown> | unknown;
}

export interface ShutdownRegistry {
  /** Register a close step at the moment the resource is created. Steps run last-registered first. */
  register(name: string, run: Step['run']): void;
  /** Runs every step once, even when called twice; a failing step is logged and the next still runs. */
  shutdown(reason: string): Promise<void>;
  readonly shuttingDown: boolean;
}

export function createShutdownRegistry(deps: { logger: Logger; timeoutMs: number }): ShutdownRegistry {
  const steps: Step[] = [];
  let running: Promise<void> | undefined;

  async function runSteps(reason: string): Promise<void> {
    deps.logger.info('shutdown started', { reason });
    for (const step of [...steps].reverse()) {
      const started = Date.now();
      try {
        await step.run();
        deps.logger.debug('shutdown step done', { step: step.name, ms: Date.now() - started });
      } catch (err) {
        deps.logger.error('shutdown step failed', { step: step.name, ms: Date.now() - started, error: String(err) });
      }
    }
    deps.logger.info('shutdown finished', { reason });
  }

  return {
    register(name, run) {
      steps.push({ name, run });
    },
    shutdown(reason) {
      running ??= Promise.race([
        runSteps(reason),
        new Promise<void>((resolve) => {
          setTimeout(() => {
            deps.logger.error('shutdown timed out', { timeoutMs: deps.timeoutMs });
            resolve();
          }, deps.timeoutMs).unref();
        }),
      ]);
      return running;
    },
    get shuttingDown() {
      return running !== undefined;
    },
  };
}
