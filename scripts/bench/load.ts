/**
 * HTTP load with autocannon: creates with a unique orderId per request (setupRequest and a
 * counter), closed-loop at a fixed number of connections, or open-ish at a fixed overall rate.
 */
import autocannon from 'autocannon';
import { abort } from './common';

export interface LoadResult {
  connections: number;
  durationSec: number;
  targetRate?: number;
  requests: number;
  ok: number;
  non2xx: number;
  /** 429 answers (nginx limit_req or the app's per-key limit): normal traffic must get none. */
  rateLimited: number;
  errors: number;
  timeouts: number;
  /** 2xx answers per second over the measured duration. */
  okPerSec: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface CreateBodyOptions {
  merchantId: string;
  orderPrefix: string;
  /** Seconds; a function draws one per request (the accuracy scenario spreads them). */
  timeoutSeconds: number | (() => number);
  channel?: string;
}

/** A counter-backed body factory: every call is a new order. */
export function createBodies(options: CreateBodyOptions): { next: () => string; count: () => number } {
  let n = 0;
  return {
    next() {
      n++;
      const timeoutSeconds = typeof options.timeoutSeconds === 'function' ? options.timeoutSeconds() : options.timeoutSeconds;
      return JSON.stringify({
        merchantId: options.merchantId,
        orderId: `${options.orderPrefix}-${n}`,
        amount: 1999,
        currency: 'CNY',
        channel: options.channel ?? 'wechat',
        timeoutSeconds,
      });
    },
    count: () => n,
  };
}

/**
 * Closed loop (`connections` busy connections) or, with `overallRate`, a paced load: autocannon
 * limits a connection to its share of requests per second, sent back to back at the start of
 * each of its seconds, so one instance with many connections sends the whole second's requests in
 * one burst. To keep the load smooth, the paced mode runs `instances` autocannon instances
 * (each with a slice of the rate, about 2 requests per second per connection) started evenly
 * staggered over one second. Latency percentiles are computed from every response time
 * (autocannon's 'response' events), so they merge across instances.
 */
/** autocannon's per-request timeout: a create still in flight when the load stops lands within it. */
export const REQUEST_TIMEOUT_SEC = 10;

export async function runLoad(options: {
  url: string;
  path: string;
  connections: number;
  durationSec: number;
  overallRate?: number;
  body: () => string;
  /** Sent on every request, e.g. the merchant's Authorization. */
  headers?: Record<string, string>;
}): Promise<LoadResult> {
  const rate = options.overallRate;
  const instances = rate ? Math.max(1, Math.min(20, Math.round(rate / 25))) : 1;
  const times: number[] = [];
  let rateLimited = 0;
  const started = Date.now();
  const polls: NodeJS.Timeout[] = [];
  const one = (index: number): Promise<autocannon.Result> => {
    const share = rate ? Math.floor(rate / instances) + (index < rate % instances ? 1 : 0) : 0;
    const opts: autocannon.Options = {
      url: options.url,
      connections: rate ? Math.max(1, Math.ceil(share / 2)) : options.connections,
      duration: options.durationSec,
      timeout: REQUEST_TIMEOUT_SEC,
      pipelining: 1,
      requests: [
        {
          method: 'POST',
          path: options.path,
          headers: { 'content-type': 'application/json', ...options.headers },
          setupRequest: (req) => ({ ...req, body: options.body() }),
        },
      ],
    };
    if (rate) opts.overallRate = share;
    return new Promise<autocannon.Result>((resolve, reject) => {
      const start = () => {
        const instance = autocannon(opts, (err: Error | null, res: autocannon.Result) => (err ? reject(err) : resolve(res)));
        instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
          if (statusCode >= 200 && statusCode < 300) times.push(responseTime);
          else if (statusCode === 429) rateLimited++;
        });
        // Stop early on an abort (signal or watchdog).
        polls.push(
          setInterval(() => {
            if (abort.requested) instance.stop();
          }, 200),
        );
      };
      if (index === 0) start();
      else setTimeout(start, Math.round((1000 * index) / instances));
    });
  };
  let results: autocannon.Result[];
  try {
    results = await Promise.all(Array.from({ length: instances }, (_, i) => one(i)));
  } finally {
    for (const p of polls) clearInterval(p);
  }
  const seconds = Math.max(...results.map((r) => r.duration), 0.001) || (Date.now() - started) / 1000;
  const ok = results.reduce((a, r) => a + r['2xx'], 0);
  const sorted = Float64Array.from(times).sort();
  const pct = (p: number) => (sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number) : NaN);
  return {
    connections: rate ? results.reduce((a, r) => a + r.connections, 0) : options.connections,
    durationSec: seconds,
    targetRate: rate,
    requests: results.reduce((a, r) => a + r.requests.total, 0),
    ok,
    non2xx: results.reduce((a, r) => a + r.non2xx, 0),
    rateLimited,
    errors: results.reduce((a, r) => a + r.errors, 0),
    timeouts: results.reduce((a, r) => a + r.timeouts, 0),
    // Each instance over its own run: the longest one can end late on a slow last answer.
    okPerSec: results.reduce((a, r) => a + r['2xx'] / Math.max(r.duration, 0.001), 0),
    p50: pct(0.5),
    p90: pct(0.9),
    p99: pct(0.99),
    max: sorted.length ? (sorted[sorted.length - 1] as number) : NaN,
  };
}
