import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSimulatorApp, type SimulatorCall } from '../../src/simulator/simulator-server';

export interface TestSimulator {
  url: string;
  script(key: string, answers: unknown[]): Promise<void>;
  calls(paymentId: string): Promise<SimulatorCall[]>;
  close(): Promise<void>;
}

/** The scriptable channel simulator, in-process on a free loopback port. */
export async function startSimulator(): Promise<TestSimulator> {
  const server: Server = await new Promise((resolve) => {
    const s = createSimulatorApp().listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    async script(key, answers) {
      const res = await fetch(`${url}/script/${encodeURIComponent(key)}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ answers }) });
      if (res.status !== 204) throw new Error(`script failed: ${res.status}`);
    },
    async calls(paymentId) {
      const res = await fetch(`${url}/calls?paymentId=${encodeURIComponent(paymentId)}`);
      return ((await res.json()) as { calls: SimulatorCall[] }).calls;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
