import { createApp } from './app';
import { ConfigError, loadConfig } from './config/config-loader';

/** The process: parse config once, build the app, start the role, trap signals. */
async function main(): Promise<void> {
  let loaded;
  try {
    loaded = loadConfig({ argv: process.argv.slice(2) });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const app = createApp(loaded.config);
  for (const warning of loaded.warnings) app.logger.warn(warning);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      app.logger.warn('second signal: exiting now', { signal });
      process.exit(1);
    }
    app
      .stop(signal)
      .then(() => process.exit(0))
      .catch(() => process.exit(1));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('unhandledRejection', (err) => app.logger.error('unhandled rejection', { error: String(err) }));

  await app.start();
}

main().catch((err) => {
  process.stderr.write(`fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
