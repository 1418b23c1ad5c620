import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from 'amqplib';
import type { Logger } from '../shared/logger';
import { UnavailableError } from '../shared/errors';
import { createAckCoalescer, type AckCoalescer } from './ack-coalescer';

export interface Delivery {
  message: ConsumeMessage;
  /** True once acked or rejected; a second ack would close the channel, so it is ignored. */
  readonly settled: boolean;
  ack(): void;
  /** Rejects without requeue (only used where the message was copied elsewhere first). */
  reject(): void;
}

export type Setup = (channel: Channel, openChannel: () => Promise<Channel>) => Promise<void>;

export interface ConsumerHandle {
  cancel(): Promise<void>;
}

export interface Broker {
  /** Starts connecting in the background; resolves once connected or when `waitMs` passes. */
  start(waitMs?: number): Promise<boolean>;
  /**
   * Runs on every (re)connect before consumers resume, e.g. to declare the topology.
   * `openChannel` gives a channel of its own, for a declaration that may fail (and close it).
   */
  addSetup(setup: Setup): void;
  /** Publishes on a confirm channel and waits for the broker's confirm, bounded by a timeout. */
  publish(exchange: string, routingKey: string, content: Buffer, options?: Options.Publish): Promise<void>;
  /** A consumer that survives reconnects: it is resubscribed on every new connection. */
  consume(queue: string, prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<ConsumerHandle>;
  /** A plain channel for admin and test work on the current connection. */
  withChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T>;
  readonly connected: boolean;
  close(): Promise<void>;
}

const CONNECT_TIMEOUT_MS = 10000;
/** Marks each publish, so a basic.return can be matched to the publish it answers. */
const PUBLISH_ID_HEADER = 'x-compensator-publish-id';
/** Capped low on purpose: timers wait while we are disconnected. */
const MAX_BACKOFF_MS = 5000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string, makeError = (message: string): Error => new Error(message)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(makeError(`timed out ${what} after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

interface Consumer {
  queue: string;
  prefetch: number;
  onDelivery: (delivery: Delivery) => void;
  channel?: Channel;
  consumerTag?: string;
  cancelled: boolean;
}

/**
 * One connection per process, reconnecting with capped exponential backoff and jitter across
 * the configured URLs (a cluster's nodes). `close` and `error` both fire on a lost connection,
 * so only `close` schedules a reconnect, and only once per connection.
 */
export function createBroker(deps: {
  urls: string[];
  logger: Logger;
  publishTimeoutMs: number;
  connectionName?: string;
  /** A mandatory publish came back unroutable (basic.return): count it. */
  onReturn?: (exchange: string, routingKey: string) => void;
}): Broker {
  const { logger } = deps;
  const setups: Setup[] = [];
  const consumers = new Set<Consumer>();
  /** Per open consumer channel, including cancelled consumers still settling their last batch. */
  const allAcks = new Set<AckCoalescer>();
  let connection: ChannelModel | undefined;
  let publisher: ConfirmChannel | undefined;
  let blocked = false;
  let drained: Promise<void> | undefined;
  let closing = false;
  let attempt = 0;
  let urlIndex = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let connecting: Promise<void> | undefined;
  const waiters = new Set<() => void>();
  /** Publish ids the broker returned as unroutable; their confirm then fails the publish. */
  const returned = new Set<string>();
  let publishSeq = 0;
  let redeclaring: Promise<void> | undefined;

  /**
   * Declares the topology again on the current connection (after a return or a cancel: an
   * operator deleted a queue, or a restart left it half-declared). One at a time.
   */
  function redeclare(why: string): Promise<void> {
    redeclaring ??= (async () => {
      const conn = connection;
      if (!conn) return;
      logger.warn('declaring the topology again', { why });
      const ch = await conn.createChannel();
      ch.on('error', (err: Error) => logger.warn('redeclare channel error', { error: err.message }));
      try {
        for (const setup of setups) await setup(ch, () => conn.createChannel());
      } finally {
        await ch.close().catch(() => undefined);
      }
    })()
      .catch((err: unknown) => {
        logger.warn('declaring the topology again failed', { error: (err as Error).message });
      })
      .finally(() => {
        redeclaring = undefined;
      });
    return redeclaring ?? Promise.resolve();
  }

  function notifyConnected(): void {
    for (const w of waiters) w();
    waiters.clear();
  }

  async function openPublisher(conn: ChannelModel): Promise<void> {
    const ch = await conn.createConfirmChannel();
    ch.on('error', (err: Error) => logger.warn('publisher channel error', { error: err.message }));
    // RabbitMQ sends basic.return before the confirm of the same publish: the confirm callback
    // then sees the id here and fails the publish, so the outbox keeps the row.
    ch.on('return', (message: ConsumeMessage) => {
      const id = message.properties.headers?.[PUBLISH_ID_HEADER];
      if (typeof id === 'string') returned.add(id);
      logger.warn('broker returned an unroutable message', { exchange: message.fields.exchange, routingKey: message.fields.routingKey });
      deps.onReturn?.(message.fields.exchange, message.fields.routingKey);
      void redeclare('a publish was unroutable');
    });
    ch.on('close', () => {
      if (publisher === ch) publisher = undefined;
      // A channel-level error (e.g. publishing to a missing exchange) closes only the channel.
      if (!closing && connection === conn) openPublisher(conn).catch(() => undefined);
    });
    publisher = ch;
  }

  async function subscribe(conn: ChannelModel, consumer: Consumer): Promise<void> {
    const ch = await conn.createChannel();
    ch.on('error', (err: Error) => logger.warn('consumer channel error', { queue: consumer.queue, error: err.message }));
    ch.on('close', () => {
      if (consumer.channel === ch) consumer.channel = undefined;
      if (!closing && !consumer.cancelled && connection === conn) {
        setTimeout(() => subscribe(conn, consumer).catch(() => undefined), 500).unref();
      }
    });
    await ch.prefetch(consumer.prefetch);
    // Acks on a channel that has since closed are dropped: the broker redelivers those.
    const acks = createAckCoalescer(ch, (err) => logger.warn('acks on a closed channel dropped', { queue: consumer.queue, error: String(err) }));
    consumer.channel = ch;
    allAcks.add(acks);
    ch.on('close', () => allAcks.delete(acks));
    const reply = await ch.consume(
      consumer.queue,
      (message) => {
        if (!message) {
        // basic.cancel from the broker (the queue was deleted, or its leader moved away): the
        // channel stays open, so nothing else would resubscribe. Declare again, then consume.
        logger.warn('the broker cancelled a consumer; resubscribing', { queue: consumer.queue });
        void resubscribeAfterCancel(conn, consumer, ch);
        return;
      }
        acks.delivered(message);
        let settled = false;
        const settleOn = (fn: (m: ConsumeMessage) => void) => () => {
          if (settled) return;
          settled = true;
          fn(message);
        };
        consumer.onDelivery({
          message,
          get settled() {
            return settled;
          },
          ack: settleOn(acks.ack),
          reject: settleOn(acks.reject),
        });
      },
      { noAck: false },
    );
    consumer.consumerTag = reply.consumerTag;
  }

  async function resubscribeAfterCancel(conn: ChannelModel, consumer: Consumer, ch: Channel): Promise<void> {
    await redeclare(`consumer of ${consumer.queue} cancelled`);
    if (closing || consumer.cancelled || connection !== conn) return;
    // A new channel: the old one's unacked deliveries are requeued when it closes, and acks for
    // them are dropped there (the broker redelivers; consumers take duplicates).
    await ch.close().catch(() => undefined); // its close handler subscribes anew
  }

  async function connectOnce(): Promise<void> {
    const url = deps.urls[urlIndex % deps.urls.length] as string;
    urlIndex++;
    // A broker that is still booting can accept TCP and never finish the handshake: bound it.
    const conn = await amqp.connect(url, { timeout: CONNECT_TIMEOUT_MS, clientProperties: { connection_name: deps.connectionName ?? 'payment-compensator' } });
    conn.on('error', (err: Error) => logger.warn('broker connection error', { error: err.message }));
    conn.on('blocked', (reason: string) => {
      blocked = true;
      logger.warn('broker blocked publishing', { reason });
    });
    conn.on('unblocked', () => {
      blocked = false;
      logger.info('broker unblocked publishing');
    });
    conn.on('close', () => {
      if (connection !== conn) return;
      connection = undefined;
      publisher = undefined;
      if (!closing) {
        logger.warn('broker connection lost; reconnecting');
        scheduleReconnect();
      }
    });
    try {
      await withTimeout(
        (async () => {
          const setupChannel = await conn.createChannel();
          for (const setup of setups) await setup(setupChannel, () => conn.createChannel());
          await setupChannel.close();
          connection = conn;
          await openPublisher(conn);
          for (const consumer of consumers) if (!consumer.cancelled) await subscribe(conn, consumer);
        })(),
        3 * CONNECT_TIMEOUT_MS,
        'declaring the topology and resubscribing',
      );
    } catch (err) {
      connection = undefined;
      await conn.close().catch(() => undefined);
      throw err;
    }
    attempt = 0;
    blocked = false;
    logger.info('broker connected', { url: url.replace(/\/\/[^@]*@/, '//***@') });
    notifyConnected();
  }

  function scheduleReconnect(): void {
    if (closing || reconnectTimer || connecting) return;
    const base = Math.min(MAX_BACKOFF_MS, 200 * 2 ** Math.min(attempt, 8));
    const delay = base / 2 + Math.random() * (base / 2);
    attempt++;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connecting = connectOnce()
        .catch((err) => {
          logger.warn('broker connect failed', { error: (err as Error).message, attempt });
          connecting = undefined;
          scheduleReconnect();
        })
        .finally(() => {
          connecting = undefined;
        });
    }, delay); // not unref'd: a worker with nothing else to do must stay alive to reconnect
  }

  function waitForConnection(ms: number): Promise<boolean> {
    if (connection) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(connection !== undefined);
      };
      const timer = setTimeout(() => {
        waiters.delete(done);
        resolve(false);
      }, ms);
      waiters.add(done);
    });
  }

  return {
    async start(waitMs = 10000) {
      connecting = connectOnce()
        .catch((err) => {
          logger.warn('broker connect failed', { error: (err as Error).message });
          connecting = undefined;
          scheduleReconnect();
        })
        .finally(() => {
          connecting = undefined;
        });
      return waitForConnection(waitMs);
    },
    addSetup(setup) {
      setups.push(setup);
    },
    async publish(exchange, routingKey, content, options = {}) {
      // Bounded like the confirm: a socket that never drains must not stall every publisher.
      if (drained) await withTimeout(drained, deps.publishTimeoutMs, 'waiting for the broker to take more data', (message) => new UnavailableError(message));
      const ch = publisher;
      if (!ch || blocked) throw new UnavailableError(blocked ? 'broker has blocked publishing' : 'broker is not connected');
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new UnavailableError('broker did not confirm in time')), deps.publishTimeoutMs);
        const id = `${process.pid}.${++publishSeq}`;
        const headers = { ...options.headers, [PUBLISH_ID_HEADER]: id };
        const ok = ch.publish(exchange, routingKey, content, { persistent: true, ...options, headers }, (err) => {
          clearTimeout(timer);
          const wasReturned = returned.delete(id);
          if (err) reject(new UnavailableError('broker rejected the message', [{ path: exchange, message: String(err) }]));
          else if (wasReturned) reject(new UnavailableError('broker returned the message: no queue is bound for it', [{ path: exchange, message: routingKey }]));
          else resolve();
        });
        // false means the socket buffer is full: later publishes wait for 'drain'.
        if (!ok && !drained) {
          drained = new Promise<void>((r) => ch.once('drain', r).once('close', r)).finally(() => {
            drained = undefined;
          });
        }
      });
    },
    async consume(queue, prefetch, onDelivery) {
      const consumer: Consumer = { queue, prefetch, onDelivery, cancelled: false };
      consumers.add(consumer);
      if (connection) await subscribe(connection, consumer);
      return {
        async cancel() {
          consumer.cancelled = true;
          consumers.delete(consumer);
          const ch = consumer.channel;
          if (ch && consumer.consumerTag) await ch.cancel(consumer.consumerTag).catch(() => undefined);
        },
      };
    },
    async withChannel(work) {
      if (!connection) throw new UnavailableError('broker is not connected');
      const ch = await connection.createChannel();
      ch.on('error', () => undefined);
      try {
        return await work(ch);
      } finally {
        await ch.close().catch(() => undefined);
      }
    },
    get connected() {
      return connection !== undefined;
    },
    async close() {
      closing = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      for (const acks of allAcks) acks.flush();
      for (const consumer of consumers) await consumer.channel?.close().catch(() => undefined);
      await publisher?.close().catch(() => undefined);
      await connection?.close().catch(() => undefined);
      connection = undefined;
    },
  };
}
