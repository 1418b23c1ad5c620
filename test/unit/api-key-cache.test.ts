import { createSecretBox, generateApiKey, hashApiKey } from '../../src/merchants/merchant-credentials';
import type { ApiKeyRow, MerchantRow, MerchantsRepository } from '../../src/merchants/merchants-repository';
import { createMerchantsService } from '../../src/merchants/merchants-service';

/**
 * The api process's cache of live API keys (http.apiKeyCacheMs), on a repository of one key whose
 * reads can be held open, and a clock the test moves: what a revoke racing a lookup, a revoke by
 * another letter case and a slow database each do to it.
 */
function setup(keyCacheMs = 1000) {
  const key = generateApiKey();
  const merchant: MerchantRow = { merchant_id: 'm_1', name: 'Shop', notify_url: 'https://shop.example/hooks', created_at: new Date(0) };
  const row: ApiKeyRow = { id: 'key_AbC', key_hash: hashApiKey(key), merchant_id: 'm_1', platform_merchants: null, amqp_user: null, created_at: new Date(0), revoked_at: null };
  let clock = 1_000_000;
  let reads = 0;
  let hold: Promise<void> | undefined;
  const repository = {
    async findApiKeyByHash(hash: string) {
      reads++;
      const snapshot = { ...row }; // what the SELECT saw, before any later revoke
      await hold;
      return hash === row.key_hash ? { key: snapshot, merchant } : undefined;
    },
    async revokeApiKey(merchantId: string, keyId: string, at: Date) {
      // The column's collation ignores case, as MariaDB's default does.
      if (merchantId !== row.merchant_id || keyId.toLowerCase() !== row.id.toLowerCase() || row.revoked_at) return false;
      row.revoked_at = at;
      return true;
    },
  } as unknown as MerchantsRepository;
  const service = createMerchantsService({ repository, secretBox: createSecretBox(Buffer.alloc(32, 1)), rotationOverlapSeconds: 0, keyCacheMs, now: () => clock });
  return {
    service,
    auth: `Bearer ${key}`,
    reads: () => reads,
    tick: (ms: number) => (clock += ms),
    holdReads: () => {
      let release!: () => void;
      hold = new Promise<void>((r) => (release = r));
      return () => {
        hold = undefined;
        release();
      };
    },
  };
}

describe('the API key cache of an api process (http.apiKeyCacheMs)', () => {
  it('when a key is used twice within the cache time, then the database is read once, and again after it', async () => {
    const t = setup();
    await t.service.authenticate(t.auth);
    await t.service.authenticate(t.auth);
    expect(t.reads()).toBe(1);
    t.tick(1000);
    await t.service.authenticate(t.auth);
    expect(t.reads()).toBe(2);
  });

  it('when the cache time is 0, then every request reads the database', async () => {
    const t = setup(0);
    await t.service.authenticate(t.auth);
    await t.service.authenticate(t.auth);
    expect(t.reads()).toBe(2);
  });

  it('when a revoke lands while a lookup that read the live row is still running, then that lookup does not cache the key', async () => {
    const t = setup();
    const release = t.holdReads();
    const inFlight = t.service.authenticate(t.auth);
    await t.service.revokeApiKey('m_1', 'key_AbC');
    release();
    await expect(inFlight).resolves.toMatchObject({ keyId: 'key_AbC' }); // it read the row before the revoke
    await expect(t.service.authenticate(t.auth)).rejects.toThrow(/unknown or revoked/);
  });

  it('when a key is revoked by its id in another letter case, then this process forgets it at once', async () => {
    const t = setup();
    await t.service.authenticate(t.auth);
    await t.service.revokeApiKey('m_1', 'KEY_abc');
    await expect(t.service.authenticate(t.auth)).rejects.toThrow(/unknown or revoked/);
  });

  it('when the database is slow to answer, then the entry still expires the cache time after the read began', async () => {
    const t = setup();
    const release = t.holdReads();
    const first = t.service.authenticate(t.auth);
    t.tick(900); // the read takes 900 ms
    release();
    await first;
    t.tick(100); // 1,000 ms after the read began
    await t.service.authenticate(t.auth);
    expect(t.reads()).toBe(2);
  });

  it('when a key is refused, then the refusal is not cached', async () => {
    const t = setup();
    await expect(t.service.authenticate(`Bearer sk_${'Z'.repeat(43)}`)).rejects.toThrow(/unknown or revoked/);
    await expect(t.service.authenticate(`Bearer sk_${'Z'.repeat(43)}`)).rejects.toThrow(/unknown or revoked/);
    expect(t.reads()).toBe(2);
  });
});
