import type { TopologyNames } from '../messaging/topology';
import { LEVEL_COUNT } from '../messaging/delay-levels';
import { UnavailableError } from '../shared/errors';

export interface QueueBacklog {
  name: string;
  ready: number;
  unacked: number;
  /** Dead-lettered but not yet forwarded (quorum at-least-once); should stay near 0. */
  deadLetterPending: number;
  publishRate: number;
  deliverRate: number;
  consumers: number;
  consoleUrl: string;
}

interface ManagementQueue {
  name: string;
  messages?: number;
  messages_ready?: number;
  messages_unacknowledged?: number;
  messages_dlx?: number;
  consumers?: number;
  message_stats?: { publish_details?: { rate?: number }; deliver_get_details?: { rate?: number } };
}

/**
 * Reads our queues from the RabbitMQ management HTTP API. The delay levels tell cheaply how many
 * timers are close: a message in level k has less than 2^(k+1) s to go, so levels 0-4 are all due
 * within 32 s and levels 0-5 within 64 s.
 */
export function createBacklogReader(deps: { managementUrl: string | undefined; vhost: string; names: TopologyNames; timeoutMs?: number }) {
  if (deps.managementUrl === undefined) {
    return {
      read(): ReturnType<ReturnType<typeof managementBacklogReader>['read']> {
        return Promise.reject(new UnavailableError('the backlog needs the RabbitMQ management API: set RABBITMQ_MANAGEMENT_URL'));
      },
    };
  }
  return managementBacklogReader({ ...deps, managementUrl: deps.managementUrl });
}

function managementBacklogReader(deps: { managementUrl: string; vhost: string; names: TopologyNames; timeoutMs?: number }) {
  const url = new URL(deps.managementUrl);
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
  url.username = '';
  url.password = '';
  const base = url.toString().replace(/\/$/, '');
  const vhost = encodeURIComponent(deps.vhost);

  return {
    async read() {
      let queues: ManagementQueue[];
      try {
        const res = await fetch(`${base}/api/queues/${vhost}?disable_stats=false`, { headers: { authorization: auth }, signal: AbortSignal.timeout(deps.timeoutMs ?? 3000) });
        if (!res.ok) throw new Error(`answered ${res.status}`);
        queues = (await res.json()) as ManagementQueue[];
      } catch (err) {
        throw new UnavailableError(`RabbitMQ management API at ${base} is unreachable: ${(err as Error).message}`);
      }
      const ours = queues.filter((q) => q.name.startsWith(`${deps.names.prefix}:`));
      const view = (q: ManagementQueue): QueueBacklog => ({
        name: q.name,
        ready: q.messages_ready ?? 0,
        unacked: q.messages_unacknowledged ?? 0,
        deadLetterPending: q.messages_dlx ?? 0,
        publishRate: q.message_stats?.publish_details?.rate ?? 0,
        deliverRate: q.message_stats?.deliver_get_details?.rate ?? 0,
        consumers: q.consumers ?? 0,
        consoleUrl: `${base}/#/queues/${vhost}/${encodeURIComponent(q.name)}`,
      });
      const levelCount = (upTo: number) => {
        let n = 0;
        for (let k = 0; k <= upTo && k < LEVEL_COUNT; k++) {
          const q = ours.find((x) => x.name === deps.names.delayQueue(k));
          n += (q?.messages ?? 0);
        }
        return n;
      };
      const delayQueues = ours.filter((q) => q.name.startsWith(`${deps.names.prefix}:delay:`));
      return {
        queues: ours.map(view).sort((a, b) => a.name.localeCompare(b.name)),
        delayLevels: {
          queues: delayQueues.length,
          messages: delayQueues.reduce((n, q) => n + (q.messages ?? 0), 0),
          deadLetterPending: delayQueues.reduce((n, q) => n + (q.messages_dlx ?? 0), 0),
        },
        timersDueWithin32s: levelCount(4),
        timersDueWithin64s: levelCount(5),
        consoleUrl: `${base}/#/queues`,
      };
    },
  };
}
export type BacklogReader = ReturnType<typeof createBacklogReader>;
