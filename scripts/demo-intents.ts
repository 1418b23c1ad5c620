/**
 * The demo's checkout that publishes instead of calling (README.md, "Payment intents over
 * RabbitMQ"): it connects as its own RabbitMQ user (the stack's `checkout`, which may only
 * publish intents and read its replies), publishes each create with confirms and its user-id,
 * and reads the outcomes from RabbitMQ's direct reply-to.
 */
import amqp, { type ConsumeMessage } from 'amqplib';
import { randomUUID } from 'node:crypto';

export interface IntentReply {
  type: 'payment.created' | 'payment.rejected';
  body: any;
}

export async function publishIntents(options: { amqpUrl: string; prefix: string; intents: Array<Record<string, unknown>>; timeoutMs?: number }): Promise<IntentReply[]> {
  const user = decodeURIComponent(new URL(options.amqpUrl).username);
  const conn = await amqp.connect(options.amqpUrl);
  try {
    const ch = await conn.createConfirmChannel();
    const replies = new Map<string, IntentReply>();
    let allAnswered: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allAnswered = resolve));
    await ch.consume(
      'amq.rabbitmq.reply-to',
      (msg: ConsumeMessage | null) => {
        if (!msg) return;
        replies.set(String(msg.properties.correlationId), { type: msg.properties.type as IntentReply['type'], body: JSON.parse(msg.content.toString('utf8')) });
        if (replies.size === options.intents.length) allAnswered();
      },
      { noAck: true },
    );
    const ids = options.intents.map((intent) => {
      const messageId = randomUUID();
      ch.publish(`${options.prefix}.intake`, 'payment.intent.create', Buffer.from(JSON.stringify(intent)), {
        contentType: 'application/json',
        messageId,
        userId: user,
        replyTo: 'amq.rabbitmq.reply-to',
        persistent: true,
      });
      return messageId;
    });
    await ch.waitForConfirms();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`only ${replies.size} of ${ids.length} intents were answered in time`)), options.timeoutMs ?? 30000);
      }),
    ]).finally(() => clearTimeout(timer));
    return ids.map((id) => replies.get(id) as IntentReply);
  } finally {
    await conn.close().catch(() => undefined);
  }
}
