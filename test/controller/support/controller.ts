// Starts a controller on a throw-away data directory with the in-memory gateways.
import { randomBytes } from 'node:crypto';
import { loadConfig, type ControllerConfig } from '../../../controller/config.ts';
import { startController, type Controller } from '../../../controller/start.ts';
import { fakeGateways } from './fakes.ts';
import { tempDir as makeTempDir } from '../../support/temp-dir.ts';

export function tempDir(prefix = 'cb-controller-'): string {
  return makeTempDir(prefix);
}

export function testConfig(dataDir: string, extra: Record<string, string> = {}): ControllerConfig {
  return loadConfig({ COSMOS_BACKUP_DATA_DIR: dataDir, PORT: '0', ...extra }, dataDir);
}

export async function startTestController(opts: { dataDir?: string; gateways?: ReturnType<typeof fakeGateways>; env?: Record<string, string> } = {}) {
  const dataDir = opts.dataDir ?? tempDir();
  const gateways = opts.gateways ?? fakeGateways();
  const c: Controller = await startController({ config: testConfig(dataDir, opts.env), gateways });
  return { ...c, gateways, dataDir };
}

export const randomKey = () => randomBytes(32).toString('base64');

/** A JSON client over app.request() with a bearer token. */
export function client(app: { request: (path: string, init?: RequestInit) => Response | Promise<Response> }, token: string | null) {
  const call = async (method: string, p: string, body?: unknown) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await app.request(p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  return {
    get: (p: string) => call('GET', p),
    post: (p: string, b?: unknown) => call('POST', p, b),
    patch: (p: string, b: unknown) => call('PATCH', p, b),
    put: (p: string, b: unknown) => call('PUT', p, b),
    del: (p: string) => call('DELETE', p),
  };
}
