import { ASSUMPTIONS, capacityModel } from '../../scripts/bench/capacity-model';

/** A full run's results.json, cut to what the model reads, with round numbers. */
function results(overrides: { bytesPerMillion?: number } = {}) {
  return {
    machine: { nproc: 2, rabbitmq: '3.10.8' },
    results: {
      intake: {
        byConcurrency: [{ connections: 128, runs: [{ okPerSec: 400 }, { okPerSec: 420 }, { okPerSec: 410 }] }],
        fixedRate: { target: 500, cpu: { microsPerCreate: { apis: 3000, rabbitmq: 500, mariadb: 500, nginx: 200, bench: 800 } } },
      },
      drain: {
        runs: [
          { workers: 1, settledPerSec: 8000, cpuMicrosPerPayment: { workers: 150, rabbitmq: 30, mariadb: 60 } },
          { workers: 2, settledPerSec: 9000, cpuMicrosPerPayment: { workers: 140, rabbitmq: 20, mariadb: 40 } },
        ],
      },
      ceilings: { publish: { rate: { median: 10_000 } }, update: { rate: { median: 100_000 } } },
      peer: overrides.bytesPerMillion === undefined ? undefined : { memory: { ours: { heapPerMillionMb: overrides.bytesPerMillion } } },
    },
  };
}

describe('the capacity model (scripts/bench/capacity-model.ts, docs/capacity.md)', () => {
  it("when it checks itself against the run, then it divides the machine's cores by the measured cost per payment", () => {
    const m = capacityModel(results());
    const [drain, intake] = m.check;
    // The best drain (2 workers) at 140 + 20 + 40 µs: 2 cores allow 10,000/s against 9,000 measured.
    expect(drain?.predicted).toBeCloseTo(10_000, 6);
    expect(drain?.error).toBeCloseTo(10_000 / 9_000 - 1, 6);
    // A create at 3,000 + 500 + 500 + 200 + 800 (the load generator shares the cores): 400/s against the median 410/s.
    expect(intake?.predicted).toBeCloseTo(400, 6);
    expect(intake?.measured).toBe(410);
  });

  it('when the run measured the CPU of its best closed-loop level, then the intake check uses that cost, and the plan still the paced one', () => {
    const r = results();
    const best = { connections: 128, runs: [{ okPerSec: 1000 }], cpu: { microsPerCreate: { apis: 1200, rabbitmq: 200, mariadb: 200, nginx: 100, bench: 300 } } };
    r.results.intake.byConcurrency = [{ connections: 8, runs: [{ okPerSec: 300 }] }, best] as typeof r.results.intake.byConcurrency;
    const m = capacityModel(r);
    const [, intake] = m.check;
    // 2 cores / 2,000 µs = 1,000/s (the paced 5,000 µs would say 400/s).
    expect(intake?.predicted).toBeCloseTo(1000, 6);
    expect(intake?.from).toMatch(/at that load/);
    expect(m.inputs.c.apis).toBe(3000);
  });

  it('when one worker drains, then its own core bounds the prediction before the machine does', () => {
    const r = results();
    r.results.drain.runs = [{ workers: 1, settledPerSec: 6000, cpuMicrosPerPayment: { workers: 150, rabbitmq: 10, mariadb: 10 } }];
    const [drain] = capacityModel(r).check;
    // The cores would allow 2e6 / 170 = 11,765/s; one worker process is one thread: 1e6 / 150.
    expect(drain?.predicted).toBeCloseTo(1e6 / 150, 6);
    expect(drain?.from).toMatch(/1 worker × 1 core/);
  });

  it('when it plans a deployment, then a 900 s timer costs four dead-letterings and each resource scales with the rate', () => {
    const m = capacityModel(results());
    expect(m.inputs.hops).toBe(4); // 900 = 512 + 256 + 128 + 4
    const [small, , large] = m.plan;
    // apis: rate × 3,000 µs at 60 % of a core each.
    expect(small?.apiProcesses).toBe(Math.ceil((1000 * 3000) / 1e6 / ASSUMPTIONS.utilization));
    expect(large?.apiProcesses).toBe(Math.ceil((100_000 * 3000) / 1e6 / ASSUMPTIONS.utilization));
    // One quorum queue takes 10,000 msg/s: at 100,000/s the busiest level needs ceil(100,000 / 6,000) shards.
    expect(small?.topologyShards).toBe(1);
    expect(large?.topologyShards).toBe(17);
    expect(small?.rabbitNodes).toBe(3); // quorum queues need three, however small the load
    expect(large?.waiting).toBe(100_000 * 900);
    // RabbitMQ's leader work per payment: the create's 500 + 4 dead-letterings and the settlement at 20 µs each;
    // the two followers at half that each double it; at 60 % of a core.
    expect(large?.rabbitCores).toBeCloseTo((100_000 * (500 + 4 * 20 + 20) * 2) / 1e6 / 0.6, 6);
    expect(large?.rabbitNodes).toBe(Math.ceil((100_000 * 600 * 2) / 1e6 / 0.6 / 8));
    // Memory: three replicas of every waiting timer (the 300-byte assumption here), spread over the nodes.
    expect(large?.rabbitMemoryGbPerNode).toBeCloseTo((100_000 * 900 * 300 * 3) / 1e9 / (large?.rabbitNodes ?? 1), 6);
    // A cell has a database of its own: at least as many shards as cells.
    expect(large?.dbShards).toBe(17);
    expect(large?.firstLimit).toBe('one queue per delay level: 17 cells');
    expect(small?.firstLimit).toBe('none: apis and workers scale out');
  });

  it('when the run measured RabbitMQ memory per waiting timer, then the plan uses it; a growth that is not positive falls back to the assumption', () => {
    expect(capacityModel(results({ bytesPerMillion: 120 })).inputs).toMatchObject({ bytesPerTimer: 120, bytesMeasured: true });
    expect(capacityModel(results({ bytesPerMillion: -50 })).inputs).toMatchObject({ bytesPerTimer: ASSUMPTIONS.fallbackBytesPerTimer, bytesMeasured: false });
  });

  it('when the run lacks the intake or the drain, then it says which run to make', () => {
    const r = results();
    delete (r.results as { drain?: unknown }).drain;
    expect(() => capacityModel(r)).toThrow(/npm run bench/);
  });
});
