import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { createDelayScheduler } from '../../src/delay/delay-scheduler';
import { auditOverdue } from '../../src/ops/audit';
import { insertPendingPayments } from '../helpers/fixtures';
import { testConfig, useTestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

const run = promisify(execFile);

describe('audit: the read-only safety net', () => {
  const config = testConfig({ role: 'worker' });
  const suite = useTestApp(config);

  it('when payments are PENDING past their deadline with no timer, then the audit lists them, changes nothing, and --requeue gets them settled', async () => {
    // One multi-row INSERT, so the four ids are consecutive and no row of a test file running
    // alongside falls in between; the audit is bounded to them (others leave PENDING rows behind).
    const [past, future] = [new Date(Date.now() - 5 * 60 * 1000), new Date(Date.now() + 60 * 60 * 1000)];
    const ids = await insertPendingPayments(suite.db, 4, (k) => (k < 3 ? past : future));
    expect(ids[3]! - ids[0]!).toBe(3);
    const [lost, notYetDue] = [ids.slice(0, 3), ids.slice(3)];
    const fromId = ids[0]! - 1;
    const toId = ids[3]!;

    const listed = await auditOverdue({ db: suite.db, graceSeconds: 60, fromId, toId, pageSize: 2 });
    expect(listed.overdue.map((p) => p.id)).toEqual(lost);
    expect(listed.scanned).toBe(4);
    expect(listed.requeued).toBe(0);
    const statuses = await suite.db('payments').whereIn('id', [...lost, ...notYetDue]).pluck('status');
    expect(statuses).toEqual(['PENDING', 'PENDING', 'PENDING', 'PENDING']);

    const scheduler = createDelayScheduler({ broker: suite.t.app.broker, names: suite.t.app.names });
    const requeued = await auditOverdue({ db: suite.db, scheduler, graceSeconds: 60, fromId, toId });
    expect(requeued.requeued).toBe(3);
    await waitFor('the requeued timers to close the lost payments', async () => {
      const rows = await suite.db('payments').whereIn('id', lost).pluck('status');
      return rows.every((s: string) => s === 'CLOSED');
    }, 15000);
    expect((await suite.db('payments').where({ id: notYetDue[0] }).first()).status).toBe('PENDING');
  });

  it('when run as `npm run audit`, then it prints what it found and exits 1 while overdue payments remain', async () => {
    const [id] = await insertPendingPayments(suite.db, 1, new Date(Date.now() - 10 * 60 * 1000));
    const root = path.resolve(__dirname, '../..');
    const result = await run(process.execPath, [path.join(root, 'node_modules/.bin/tsx'), path.join(root, 'src/ops/audit-main.ts'), '--grace', '60', '--from-id', String(id! - 1), '--to-id', String(id)], {
      env: { ...process.env, NODE_ENV: 'test' },
    }).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/1 PENDING past deadline \+ grace/);
    expect(result.stdout).toContain(`id=${id}`);
  });
});
