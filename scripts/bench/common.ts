/**
 * Shared helpers of the benchmark: paths, logging, statistics, bounded child processes.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { waitFor as sharedWaitFor } from '../../test/helpers/wait';

export const ROOT = path.resolve(__dirname, '..', '..');
export const STACK_DIR = process.env.STACK_DIR ? path.resolve(process.env.STACK_DIR) : path.join(ROOT, '.stack');

const started = Date.now();

export function log(message: string): void {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stdout.write(`[bench +${t}s] ${message}\n`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Set when a signal or the global watchdog asks everything to stop; every loop checks it. */
export const abort = { requested: false, reason: '' };

export function checkAbort(): void {
  if (abort.requested) throw new Error(`aborted: ${abort.reason}`);
}

/** Sleeps in small steps so an abort is noticed quickly. */
export async function sleepUnlessAborted(ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    checkAbort();
    await sleep(Math.min(200, end - Date.now()));
  }
}

/** The tests' poll (test/helpers/wait.ts), stopped at once by an abort (signal or watchdog). */
export function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, intervalMs = 250): Promise<T> {
  return sharedWaitFor(what, check, timeoutMs, intervalMs, { abort: checkAbort });
}

// ---------------------------------------------------------------- statistics

export interface Spread {
  n: number;
  median: number;
  min: number;
  max: number;
  p25: number;
  p75: number;
}

/** Percentile of an ascending array (nearest rank on a linear interpolation). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  if (sorted.length === 1) return sorted[0] as number;
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

export function spread(values: number[]): Spread {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return {
    n: s.length,
    median: percentile(s, 0.5),
    min: s.length ? (s[0] as number) : NaN,
    max: s.length ? (s[s.length - 1] as number) : NaN,
    p25: percentile(s, 0.25),
    p75: percentile(s, 0.75),
  };
}

/** Lateness-style summary of a large sample (sorted copy). */
export function distribution(values: number[]): { n: number; p50: number; p90: number; p99: number; max: number; min: number; mean: number } {
  const s = Float64Array.from(values).sort();
  const arr = Array.from(s);
  const mean = arr.length ? arr.reduce((a, b) => a + b, 0) / arr.length : NaN;
  return {
    n: arr.length,
    min: arr.length ? (arr[0] as number) : NaN,
    p50: percentile(arr, 0.5),
    p90: percentile(arr, 0.9),
    p99: percentile(arr, 0.99),
    max: arr.length ? (arr[arr.length - 1] as number) : NaN,
    mean,
  };
}

export function fmt(n: number | undefined, digits = 0): string {
  if (n === undefined || !Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "median (min–max)" */
export function fmtSpread(s: Spread | undefined, digits = 0, unit = ''): string {
  if (!s || s.n === 0) return 'n/a';
  if (s.n === 1) return `${fmt(s.median, digits)}${unit} (1 run)`;
  return `${fmt(s.median, digits)}${unit} (${fmt(s.min, digits)}–${fmt(s.max, digits)}, n=${s.n})`;
}

// ---------------------------------------------------------------- processes

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with a hard timeout; rejects on a non-zero exit unless `allowFail`. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs: number; allowFail?: boolean; cwd?: string; quiet?: boolean }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const result = { code, stdout, stderr };
      if (code !== 0 && !opts.allowFail) {
        reject(new Error(`${cmd} ${args.join(' ')} exited ${code}\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`));
      } else resolve(result);
    });
  });
}

// ---------------------------------------------------------------- /proc

export const CLK_TCK = 100; // Linux USER_HZ on x86_64

/** utime + stime of a process in ms, or undefined when it is gone. */
export function cpuMsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after "(comm) ": state is index 0, utime is field 14 overall = index 11 here
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return ((utime + stime) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** The sum, or undefined when there is nothing to add or any part is unknown. */
export function sumIfAll(values: Array<number | undefined>): number | undefined {
  return values.length > 0 && values.every((v) => v !== undefined) ? (values as number[]).reduce((a, b) => a + b, 0) : undefined;
}

/** CPU time of the whole machine in ms (all cores), busy and in all, from /proc/stat. */
export function machineCpuMs(): { busy: number; total: number } {
  // cpu user nice system idle iowait irq softirq steal ...
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: ((total - idle) * 1000) / CLK_TCK, total: (total * 1000) / CLK_TCK };
}

/** VmRSS and VmHWM of a process in MB, or undefined when it is gone. */
export function memoryOf(pid: number): { rssMb: number; hwmMb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').replace(/\D/g, ''));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Counts of set bits: the dead-letterings ("hops") a delay of that many seconds takes. */
export function popcount(n: number): number {
  let c = 0;
  let v = n;
  while (v > 0) {
    c += v & 1;
    v = Math.floor(v / 2);
  }
  return c;
}

/** Prometheus text: sum of a metric's samples whose labels contain every given pair. */
export function promSum(text: string, metric: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN|\+Inf)/.exec(line);
    if (!m || m[1] !== metric) continue;
    const labelText = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

export async function httpText(url: string, timeoutMs = 3000): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.text();
}

/** config/default.json, the settings every bench app runs with under its bench overrides. */
export function defaultConfig(): { worker: { prefetch: number; batchSize: number; batchWaitMs: number }; database: { poolMax: number } } {
  return JSON.parse(readFileSync(path.join(ROOT, 'config', 'default.json'), 'utf8'));
}
