import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import ipaddr from 'ipaddr.js';
import { Agent, request } from 'undici';

/*
 * Outbound HTTP that a hostile URL cannot turn against us (merchant notifications, the http
 * channel adapter), after Stripe's Smokescreen:
 *   - the address is checked at connect time, after DNS resolution, in the dispatcher's own
 *     lookup, so a name that resolves to a private address (or is rebound to one between a
 *     check and the connect) is refused; an IP literal is checked before any connect;
 *   - no redirects, `accept-encoding: identity`, and at most a few KiB of the answer are read
 *     before the body is cancelled, so a slow or huge (or gzip-bomb) answer costs nothing;
 *   - a connect timeout and a total timeout;
 *   - per destination host, a cap on calls in flight and a circuit breaker: a host that hangs
 *     or fails is refused at once ("busy", "open"), so its calls are re-scheduled instead of
 *     holding the slots other merchants need.
 * undici (Node's own fetch engine) is used directly rather than request-filtering-agent
 * because global fetch takes an undici dispatcher, not an http.Agent, and its `request`
 * hands back the raw body stream, which is what lets us stop reading.
 */

/** Ranges that are never a merchant's or a channel's public endpoint. */
const BLOCKED_RANGES = new Set(['unspecified', 'broadcast', 'multicast', 'linkLocal', 'loopback', 'carrierGradeNat', 'private', 'reserved', 'uniqueLocal', 'ipv4Mapped', 'rfc6145', 'rfc6052', '6to4', 'teredo', 'benchmarking', 'amt', 'as112', 'deprecated', 'orchid2', 'droneRemoteIdProtocolEntityTags']);

export interface OutboundPolicy {
  /** Loopback is allowed (development and test: the demo's merchant and the simulator run there). */
  allowLoopback: boolean;
  /** Hosts or addresses (or CIDR ranges) allowed although private: notifications.allowPrivateHosts. */
  allowPrivateHosts: string[];
}

export type OutboundFailure = 'refused' | 'busy' | 'open' | 'timeout' | 'network';

/** A call that was not made, or did not finish; `kind` says which, for the retry decision. */
export class OutboundError extends Error {
  constructor(
    readonly kind: OutboundFailure,
    message: string,
    /** For `open`: when the host's breaker lets a call through again (epoch ms). */
    readonly retryAt?: number,
  ) {
    super(message);
    this.name = 'OutboundError';
  }
}

function unmapped(address: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const parsed = ipaddr.parse(address);
  return parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress() ? (parsed as ipaddr.IPv6).toIPv4Address() : parsed;
}

/** Whether `address` (an IP) may be connected to under the policy; `host` is the name asked for. */
export function addressAllowed(address: string, host: string, policy: OutboundPolicy): boolean {
  if (!ipaddr.isValid(address)) return false;
  const ip = unmapped(address);
  const range = ip.range();
  if (!BLOCKED_RANGES.has(range)) return true;
  if (range === 'loopback' && policy.allowLoopback) return true;
  return policy.allowPrivateHosts.some((allowed) => {
    if (allowed.toLowerCase() === host.toLowerCase()) return true;
    try {
      if (allowed.includes('/')) {
        const [net, bits] = ipaddr.parseCIDR(allowed);
        return net.kind() === ip.kind() && ip.match([net, bits] as never);
      }
      return ipaddr.isValid(allowed) && unmapped(allowed).toString() === ip.toString();
    } catch {
      return false;
    }
  });
}

/** A lookup for net.connect that answers only allowed addresses, or fails the connect. */
function filteringLookup(policy: OutboundPolicy) {
  return (hostname: string, options: object, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const allowed = (addresses as LookupAddress[]).filter((a) => addressAllowed(a.address, hostname, policy));
      if (allowed.length === 0) {
        const refused = Object.assign(new Error(`${hostname} resolves only to addresses outbound calls may not reach`), { code: 'EOUTBOUNDREFUSED' });
        return callback(refused, []);
      }
      if ((options as { all?: boolean }).all) return callback(null, allowed);
      const first = allowed[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
}

interface HostState {
  inFlight: number;
  failures: number;
  openUntil: number;
  /** Calls waiting for a slot, oldest first; each is woken by a call that ends. */
  waiting: Array<() => void>;
}

export interface OutboundResponse {
  status: number;
  /** The answer's headers (a channel signs its answers in them). */
  headers: Record<string, string | string[] | undefined>;
  /** At most `maxResponseBytes` of the answer, as text. */
  body: string;
}

/** The outbound client; one per process, shared by notifications and channel adapters. */
export function createOutboundHttp(options: {
  policy: OutboundPolicy;
  connectTimeoutMs?: number;
  /** Bytes of an answer that are read; the rest is cancelled. */
  maxResponseBytes?: number;
  /** Calls in flight per destination host; more wait up to slotWaitMs, then are refused as "busy". */
  perHostConcurrency?: number;
  /** How long a call waits for a host's slot: a healthy host frees one in milliseconds, a hung one never. */
  slotWaitMs?: number;
  /** Consecutive failures that open a host's breaker, and for how long it stays open. */
  breakerFailures?: number;
  breakerOpenMs?: number;
  now?: () => number;
}) {
  const maxBytes = options.maxResponseBytes ?? 4096;
  const perHost = options.perHostConcurrency ?? 8;
  const breakerFailures = options.breakerFailures ?? 5;
  const breakerOpenMs = options.breakerOpenMs ?? 30_000;
  const now = options.now ?? Date.now;
  const dispatcher = new Agent({ connect: { lookup: filteringLookup(options.policy), timeout: options.connectTimeoutMs ?? 3000 }, keepAliveTimeout: 4000 });
  const hosts = new Map<string, HostState>();
  const stateOf = (host: string) => {
    let s = hosts.get(host);
    if (!s) hosts.set(host, (s = { inFlight: 0, failures: 0, openUntil: 0, waiting: [] }));
    return s;
  };

  const slotWaitMs = options.slotWaitMs ?? 250;

  /** Takes a slot of the host, waiting at most slotWaitMs for one. */
  async function takeSlot(host: string, state: HostState): Promise<void> {
    if (state.inFlight >= perHost) {
      const woken = await new Promise<boolean>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          state.waiting.splice(state.waiting.indexOf(wake), 1);
          resolve(false);
        }, slotWaitMs);
        state.waiting.push(wake);
      });
      if (!woken) throw new OutboundError('busy', `${host} already has ${perHost} calls in flight`);
    }
    state.inFlight++;
  }
  function releaseSlot(state: HostState): void {
    state.inFlight--;
    state.waiting.shift()?.();
  }

  /** Refuses before anything is sent: a bad URL, a blocked IP literal, a broken host. */
  function admit(url: URL): HostState {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutboundError('refused', `${url.protocol} URLs are not called`);
    if (url.username || url.password) throw new OutboundError('refused', 'URLs with credentials are not called');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (ipaddr.isValid(host) && !addressAllowed(host, host, options.policy)) throw new OutboundError('refused', `${host} is an address outbound calls may not reach`);
    const state = stateOf(url.host);
    if (state.openUntil > now()) throw new OutboundError('open', `${url.host} failed ${breakerFailures} times in a row; not called until ${new Date(state.openUntil).toISOString()}`, state.openUntil);
    return state;
  }

  async function readCapped(body: AsyncIterable<Buffer> & { destroy(err?: Error): void }): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= maxBytes) break; // leaving the loop destroys the stream: nothing more is read
    }
    return Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8');
  }

  /** One call with any method, under the same policy, caps and breaker as `post`. */
  async function send(method: 'GET' | 'POST', rawUrl: string, body: string | undefined, headers: Record<string, string>, timeoutMs: number): Promise<OutboundResponse> {
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      throw new OutboundError('refused', 'not a URL');
    }
    const state = admit(url);
    await takeSlot(url.host, state);
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const res = await request(url, {
        method,
        body,
        headers: { ...headers, 'accept-encoding': 'identity' },
        dispatcher,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await readCapped(res.body);
      // A 5xx counts against the host like a timeout; any answer below it resets the count.
      if (res.statusCode >= 500) fail(state);
      else state.failures = 0;
      return { status: res.statusCode, headers: res.headers, body: text };
    } catch (err) {
      if (err instanceof OutboundError) throw err;
      const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string } };
      if (e.code === 'EOUTBOUNDREFUSED' || e.cause?.code === 'EOUTBOUNDREFUSED') throw new OutboundError('refused', e.message ?? 'refused');
      // A request we refused to build (a header value undici rejects) says nothing about the
      // host: it must not count towards that host's breaker.
      if (e.code === 'UND_ERR_INVALID_ARG') throw new OutboundError('refused', e.message ?? 'invalid request');
      fail(state);
      if (signal.aborted || e.name === 'AbortError' || e.name === 'TimeoutError' || /Timeout/.test(e.code ?? '')) throw new OutboundError('timeout', `no answer within ${timeoutMs} ms`);
      throw new OutboundError('network', e.message ?? String(err));
    } finally {
      releaseSlot(state);
    }
  }

  return {
    /** POSTs `body`; a non-2xx is an answer, not an error. Throws OutboundError when no answer came. */
    post(rawUrl: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<OutboundResponse> {
      return send('POST', rawUrl, body, headers, timeoutMs);
    },

    request: send,
    close: () => dispatcher.close(),
  };

  function fail(state: HostState): void {
    state.failures++;
    if (state.failures >= breakerFailures) {
      state.openUntil = now() + breakerOpenMs;
      state.failures = 0;
    }
  }
}
export type OutboundHttp = ReturnType<typeof createOutboundHttp>;
