import { createBacklogReader } from '../../src/ops/backlog';
import { createTopologyNames } from '../../src/messaging/topology';
import { UnavailableError } from '../../src/shared/errors';

describe('the backlog reader without a management URL', () => {
  it('when RABBITMQ_MANAGEMENT_URL is not configured, then reading answers unavailable, naming the variable', async () => {
    const reader = createBacklogReader({ managementUrl: undefined, vhost: '/', names: createTopologyNames('compensator') });
    const err = await reader.read().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/RABBITMQ_MANAGEMENT_URL/);
  });
});
