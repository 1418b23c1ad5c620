import { startTestApp, testConfig, deleteTestTopology } from './test/helpers/test-app';
import { request } from './test/helpers/api';
(async () => {
  const config = testConfig();
  const t = await startTestApp(config);
  try {
    for (const p of ['/v1/payments/%F0%9F%98%80', '/v1/payments/' + 'a'.repeat(5000)]) {
      const r = await request(t.baseUrl, 'GET', p); console.log(p.slice(0,40), r.status, JSON.stringify(r.body).slice(0,200));
    }
    const r = await request(t.baseUrl, 'POST', '/v1/payments', { merchantId: 'm_'+Date.now(), orderId: 'o', amount: 1, currency: 'CNY', channel: 'wechat', notifyUrl: 'http://x/\u{1F600}' }); console.log(r.status, JSON.stringify(r.body));
    const r2 = await request(t.baseUrl, 'POST', '/v1/payments', { merchantId: 'm_'+Date.now(), orderId: 'o', amount: 1, currency: 'CNY', channel: 'wechat', notifyUrl: 'http://x/' + 'a'.repeat(2030) }); console.log(r2.status, JSON.stringify(r2.body).slice(0,300));
  } finally { await t.stop(); await deleteTestTopology(config); }
  console.log(t.logs.filter(l => l.includes('"error"')).slice(0, 5).join('\n').slice(0, 2000));
})();
