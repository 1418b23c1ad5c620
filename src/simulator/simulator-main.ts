import { createSimulatorApp } from './simulator-server';

/** `npm run simulator`: the scriptable channel on SIMULATOR_PORT (default 4000), loopback only unless told. */
const port = Number(process.env.SIMULATOR_PORT ?? 4000);
const host = process.env.SIMULATOR_HOST ?? '127.0.0.1';
const server = createSimulatorApp().listen(port, host, () => {
  process.stdout.write(`simulator listening on http://${host}:${port}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
