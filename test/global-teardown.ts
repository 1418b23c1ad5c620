import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** Stops the stack if this jest run started it (see global-setup.ts). */
export default async function globalTeardown(): Promise<void> {
  if (!(globalThis as { __startedStack?: boolean }).__startedStack) return;
  execFileSync('bash', [path.resolve(__dirname, '..', 'scripts/stack.sh'), 'down'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 5 * 60 * 1000 });
}
