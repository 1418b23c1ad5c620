import { levelTtlSeconds } from './delay-levels';

/** Where a due message goes once its delay has run out: the routing-key suffix after the bits. */
export const DESTINATIONS = {
  paymentTimer: 'payment.timer.due',
  notification: 'notification.delivery.due',
} as const;
export type Destination = (typeof DESTINATIONS)[keyof typeof DESTINATIONS];

/** The routing keys of payment intents (in) and their outcomes (out), README.md "Payment intents over RabbitMQ". */
export const INTAKE_KEYS = {
  create: 'payment.intent.create',
  created: 'payment.created',
  rejected: 'payment.rejected',
} as const;

/** Our own headers: RabbitMQ 4.x ignores a client-set x-death, so attempts live here. */
export const HEADERS = {
  deadline: 'x-compensator-deadline',
  attempt: 'x-compensator-attempt',
} as const;

function pad(level: number): string {
  return String(level).padStart(2, '0');
}

function ttlLabel(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0 && seconds >= 60) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/**
 * Every exchange and queue name, in one place. Queues are `consumer:entity:action`, exchanges
 * `<prefix>.<what>`; a delay queue's name carries its TTL so the console explains itself.
 */
export function createTopologyNames(prefix: string) {
  return {
    prefix,
    delayExchange: (level: number) => `${prefix}.delay.level-${pad(level)}`,
    delayQueue: (level: number) => `${prefix}:delay:level-${pad(level)}-${ttlLabel(levelTtlSeconds(level))}`,
    dueExchange: `${prefix}.due`,
    compensationQueue: `${prefix}:payment:compensate`,
    notificationQueue: `${prefix}:notification:deliver`,
    /** Checkouts publish payment intents here (topic); the api role consumes them. */
    intakeExchange: `${prefix}.intake`,
    intakeQueue: `${prefix}:payment:intake`,
    /** Outcomes of intents (topic): payment.created, payment.rejected. */
    eventsExchange: `${prefix}.events`,
    /** Where the work queues dead-letter what passed their delivery limit; parked from there. */
    deadLetterExchange: `${prefix}.dead-letter`,
    deadLetterQueue: `${prefix}:parking:dead-letter`,
  };
}
export type TopologyNames = ReturnType<typeof createTopologyNames>;
