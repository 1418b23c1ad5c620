import type { Channel, ConsumeMessage } from 'amqplib';

type State = 'open' | 'ack' | 'reject';

export interface AckCoalescer {
  /** Records a delivery in the order the channel delivered it. */
  delivered(message: ConsumeMessage): void;
  ack(message: ConsumeMessage): void;
  reject(message: ConsumeMessage): void;
  /** Writes what is settled now; call before closing the channel. */
  flush(): void;
}

/**
 * Sends a consumer channel's acks once per event-loop turn instead of one frame per message:
 * the settled run at the head of the delivery order goes as one `multiple` ack, and anything
 * settled behind a still-open delivery goes on its own, so one slow message never holds back
 * the acks (and the prefetch window) of the others.
 */
export function createAckCoalescer(channel: Channel, onError: (err: unknown) => void): AckCoalescer {
  // Insertion order is delivery order, and delivery tags only grow on a channel.
  const outstanding = new Map<number, { message: ConsumeMessage; state: State }>();
  let scheduled = false;

  function settle(message: ConsumeMessage, state: State): void {
    const entry = outstanding.get(message.fields.deliveryTag);
    if (!entry || entry.state !== 'open') return;
    entry.state = state;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  }

  function flush(): void {
    scheduled = false;
    try {
      let run: ConsumeMessage | undefined; // the last of the settled head run, still to be acked
      let head = true;
      for (const [tag, entry] of outstanding) {
        if (entry.state === 'open') {
          head = false;
          continue;
        }
        outstanding.delete(tag);
        if (head && entry.state === 'ack') {
          run = entry.message;
          continue;
        }
        if (run) channel.ack(run, true);
        run = undefined;
        if (entry.state === 'ack') channel.ack(entry.message);
        else channel.reject(entry.message, false);
      }
      if (run) channel.ack(run, true);
    } catch (err) {
      // The channel closed: the broker redelivers what was not acked.
      outstanding.clear();
      onError(err);
    }
  }

  return {
    delivered(message) {
      outstanding.set(message.fields.deliveryTag, { message, state: 'open' });
    },
    ack: (message) => settle(message, 'ack'),
    reject: (message) => settle(message, 'reject'),
    flush,
  };
}
