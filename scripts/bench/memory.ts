/**
 * Scenario 6: peak memory of every api and worker process. Polls VmRSS (and VmHWM, the
 * kernel's own high-water mark) of the pids in the stack's pid files twice a second and keeps
 * the peak per scenario and process.
 */
import { memoryOf } from './common';
import { appPids } from './environment';

export interface MemoryPeak {
  scenario: string;
  process: string;
  pid: number;
  peakRssMb: number;
  hwmMb: number;
}

export function createMemorySampler(intervalMs = 500) {
  const peaks = new Map<string, MemoryPeak>();
  let scenario: string | undefined;
  let timer: NodeJS.Timeout | undefined;

  function sample(): void {
    if (!scenario) return;
    for (const [name, pid] of appPids()) {
      const m = memoryOf(pid);
      if (!m || !Number.isFinite(m.rssMb)) continue;
      const key = `${scenario}|${name}|${pid}`;
      const prev = peaks.get(key);
      peaks.set(key, {
        scenario,
        process: name,
        pid,
        peakRssMb: Math.max(prev?.peakRssMb ?? 0, m.rssMb),
        hwmMb: Math.max(prev?.hwmMb ?? 0, Number.isFinite(m.hwmMb) ? m.hwmMb : 0),
      });
    }
  }

  return {
    /** Attributes samples to `name` until the next call; undefined pauses sampling. */
    setScenario(name: string | undefined): void {
      sample();
      scenario = name;
      sample();
    },
    start(): void {
      timer ??= setInterval(sample, intervalMs);
      timer.unref();
    },
    stop(): void {
      sample();
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    sampleNow: sample,
    peaks(): MemoryPeak[] {
      return [...peaks.values()].sort((a, b) => a.scenario.localeCompare(b.scenario) || a.process.localeCompare(b.process, 'en', { numeric: true }));
    },
  };
}
export type MemorySampler = ReturnType<typeof createMemorySampler>;
