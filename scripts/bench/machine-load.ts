/**
 * How busy the machine was with work that is not the benchmark's: other engineers' test stacks,
 * builds, kernel threads. Samples /proc every second and splits CPU time between "ours" (this
 * process and its children, the stack's RabbitMQ, MariaDB, nginx and app processes) and
 * everything else, per scenario. The report shows it next to the figures it may have disturbed.
 */
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLK_TCK, STACK_DIR, readPid } from './common';
import { appPids } from './environment';

interface Proc {
  ppid: number;
  ticks: number;
}

function readProcs(): Map<number, Proc> {
  const out = new Map<number, Proc>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(name), { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) });
    } catch {
      // gone
    }
  }
  return out;
}

function ourRoots(): number[] {
  const roots = [process.pid, ...appPids().values()];
  for (const f of ['mariadb/mariadbd.pid', 'rabbitmq/beam.pid', 'rabbitmq/rabbitmq-server.pid', 'nginx/nginx.master.pid', 'epmd/epmd.pid', 'app/simulator.pid']) {
    const pid = readPid(path.join(STACK_DIR, f));
    if (pid) roots.push(pid);
  }
  return roots;
}

export interface LoadShare {
  scenario: string;
  seconds: number;
  /** Average cores used by the benchmark's own processes and the stack it drives. */
  oursCores: number;
  /** Average cores used by everything else on the machine. */
  othersCores: number;
  loadAvgStart: number;
}

export function createMachineLoadSampler(intervalMs = 1000) {
  let prev = readProcs();
  let scenario: string | undefined;
  let acc = { ours: 0, others: 0, startedAt: Date.now(), loadAvg: os.loadavg()[0] ?? 0 };
  const results: LoadShare[] = [];
  let timer: NodeJS.Timeout | undefined;

  function sample(): void {
    const now = readProcs();
    const ours = new Set<number>();
    const roots = ourRoots();
    // descendants of our roots
    const children = new Map<number, number[]>();
    for (const [pid, p] of now) {
      if (!children.has(p.ppid)) children.set(p.ppid, []);
      (children.get(p.ppid) as number[]).push(pid);
    }
    const stack = [...roots];
    while (stack.length) {
      const pid = stack.pop() as number;
      if (ours.has(pid)) continue;
      ours.add(pid);
      stack.push(...(children.get(pid) ?? []));
    }
    if (scenario) {
      for (const [pid, p] of now) {
        const before = prev.get(pid);
        if (!before) continue;
        const d = p.ticks - before.ticks;
        if (d <= 0) continue;
        if (ours.has(pid)) acc.ours += d;
        else acc.others += d;
      }
    }
    prev = now;
  }

  function close(): void {
    if (!scenario) return;
    const seconds = (Date.now() - acc.startedAt) / 1000;
    if (seconds > 0.5) {
      results.push({
        scenario,
        seconds,
        oursCores: acc.ours / CLK_TCK / seconds,
        othersCores: acc.others / CLK_TCK / seconds,
        loadAvgStart: acc.loadAvg,
      });
    }
  }

  return {
    setScenario(name: string | undefined): void {
      sample();
      close();
      scenario = name;
      acc = { ours: 0, others: 0, startedAt: Date.now(), loadAvg: os.loadavg()[0] ?? 0 };
    },
    start(): void {
      timer ??= setInterval(sample, intervalMs);
      timer.unref();
    },
    stop(): void {
      sample();
      close();
      scenario = undefined;
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    results: () => results,
  };
}
export type MachineLoadSampler = ReturnType<typeof createMachineLoadSampler>;
