import { spawn, type ChildProcess } from 'node:child_process';

/**
 * The one supervisor of the child processes that the tests and the benchmark start themselves
 * (service processes of the fault suite, nginx, the bench's no-op servers): each is stopped by
 * its own handle only, SIGTERM, a bounded wait, then SIGKILL. scripts/stack.sh supervises the
 * stack's own processes by pid file in the same way.
 */
export interface ChildHandle {
  child: ChildProcess;
  /** Resolves with the exit code (null after a signal) once the process has exited. */
  exited: Promise<number | null>;
}

/** `output: 'pipe'` (the default) leaves stdout and stderr for the caller to read or drain. */
export function startProcess(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; output?: 'pipe' | 'ignore' } = {}): ChildHandle {
  const out = options.output ?? 'pipe';
  const child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', out, out] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code once it has exited. */
export async function stopProcess(handle: ChildHandle, graceMs = 15000): Promise<number | null> {
  const { child } = handle;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return child.exitCode;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    return await handle.exited;
  } finally {
    clearTimeout(timer);
  }
}
