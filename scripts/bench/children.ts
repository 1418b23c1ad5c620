/**
 * Child processes the benchmark starts itself (the no-op servers and their nginx), remembered
 * so that an abort stops them all; test/helpers/processes.ts starts and stops each.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { startProcess, stopProcess, type ChildHandle } from '../../test/helpers/processes';
import { ROOT } from './common';

const children = new Map<ChildProcess, ChildHandle>();

export function startChild(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const handle = startProcess(cmd, args, { env, cwd: ROOT });
  const { child } = handle;
  children.set(child, handle);
  void handle.exited.then(() => children.delete(child));
  // keep the pipes drained
  child.stdout?.on('data', () => undefined);
  child.stderr?.on('data', () => undefined);
  return child;
}

export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  const handle = children.get(child);
  if (handle) await stopProcess(handle, graceMs);
  children.delete(child);
}

export async function stopAllChildren(): Promise<void> {
  await Promise.all([...children.keys()].map((c) => stopChild(c)));
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
