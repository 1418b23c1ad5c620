/**
 * Sizes of every scenario (full and --quick) and the context the scenarios share.
 */
import type { MemorySampler } from './memory';

export interface Sizes {
  repeats: number;
  ceilings: { publishSec: number; updateBatch: number; updateConcurrency: number; noopSec: number; concurrencies: number[] };
  intake: { durationSec: number; concurrencies: number[]; fixedRate: number; fixedSec: number; fixedConnections: number; timeoutSeconds: number };
  drain: { payments: number; endToEnd: number; endToEndPublishRateGuess: number };
  accuracy: { rate: number; durationSec: number; minTimeout: number; maxTimeout: number; connections: number };
  batchJob: {
    durationSec: number;
    insertRate: number;
    callbackRate: number;
    minTimeout: number;
    maxTimeout: number;
    replicas: number;
    limit: number;
    seedRows: number;
  };
  /**
   * The BullMQ peer (peer-bullmq.ts); its lateness and drain runs take the accuracy and drain
   * sizes above, so both designs do the same work.
   */
  peer: { concurrency: number; dbPool: number; memoryTimers: number; memoryDelaySec: number; killTimers: number; killDelaySec: number };
}

export const FULL: Sizes = {
  repeats: 3,
  ceilings: { publishSec: 3, updateBatch: 200, updateConcurrency: 4, noopSec: 3, concurrencies: [8, 32, 128] },
  intake: { durationSec: 4, concurrencies: [8, 32, 128], fixedRate: 500, fixedSec: 5, fixedConnections: 50, timeoutSeconds: 900 },
  drain: { payments: 100_000, endToEnd: 20_000, endToEndPublishRateGuess: 5000 },
  accuracy: { rate: 1000, durationSec: 60, minTimeout: 1, maxTimeout: 30, connections: 100 },
  batchJob: { durationSec: 15, insertRate: 300, callbackRate: 100, minTimeout: 1, maxTimeout: 5, replicas: 5, limit: 1000, seedRows: 1_000_000 },
  // dbPool: our workers' database.poolMax (config/default.json)
  peer: { concurrency: 50, dbPool: 10, memoryTimers: 200_000, memoryDelaySec: 3600, killTimers: 10_000, killDelaySec: 600 },
};

// --quick runs inside `npm test` (CI): two repeats still give a median and a spread.
export const QUICK: Sizes = {
  repeats: 2,
  ceilings: { publishSec: 0.5, updateBatch: 200, updateConcurrency: 4, noopSec: 1, concurrencies: [8, 128] },
  intake: { durationSec: 1, concurrencies: [8, 128], fixedRate: 500, fixedSec: 1, fixedConnections: 50, timeoutSeconds: 900 },
  drain: { payments: 3_000, endToEnd: 1_000, endToEndPublishRateGuess: 5000 },
  accuracy: { rate: 200, durationSec: 2, minTimeout: 1, maxTimeout: 2, connections: 50 },
  batchJob: { durationSec: 1.5, insertRate: 200, callbackRate: 60, minTimeout: 1, maxTimeout: 1, replicas: 5, limit: 1000, seedRows: 20_000 },
  peer: { concurrency: 50, dbPool: 10, memoryTimers: 10_000, memoryDelaySec: 3600, killTimers: 1_000, killDelaySec: 600 },
};

export const SCENARIOS = ['ceilings', 'intake', 'accuracy', 'drain', 'batch-job', 'peer'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface Context {
  runId: string;
  quick: boolean;
  sizes: Sizes;
  db: string;
  outDir: string;
  tmpDir: string;
  /** COMPENSATOR_CONFIG files, one per broker prefix. */
  configs: { quorum: string; classic: string; batchJob: string; peer: string };
  /** peer: the BullMQ key prefix of the peer's queues, and the broker prefix of our side's memory and SIGKILL runs. */
  prefixes: { quorum: string; classic: string; batchJob: string; ceiling: string; peer: string };
  memory: MemorySampler;
  /** What the scenarios measured, for the ratios of later ones. */
  results: Record<string, unknown>;
  notes: string[];
}
