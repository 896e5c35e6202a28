// Smoke test of `npm run dev:cloud`: the script runs as its own process, its printed settings are
// all a controller needs to sign in and discover the seeded tenant, and Ctrl-C cleans up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { startController } from '../../controller/start.ts';
import { AzureCloudGateway } from '../../controller/azure/gateway.ts';
import { loadAzureSettings } from '../../controller/azure/settings.ts';
import { client, tempDir, testConfig } from '../controller/support/controller.ts';
import { fakeGateways } from '../controller/support/fakes.ts';

const listening = (port: number) => new Promise<boolean>((resolve) => {
  const s = connect(port, '127.0.0.1');
  s.once('connect', () => { s.destroy(); resolve(true); });
  s.once('error', () => resolve(false));
});

test('npm run dev:cloud: printed settings sign a controller in, a rescan lists the seeded tenant, Ctrl-C cleans up', { timeout: 240_000 }, async () => {
  const child = spawn(process.execPath, ['scripts/dev-cloud.ts'], { cwd: new URL('../..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => { if (out.includes('Simulator control')) { clearInterval(t); resolve(); } }, 100);
      void exited.then((code) => { clearInterval(t); reject(new Error(`dev:cloud exited (${code}) before printing its settings: ${err.slice(-2000)}`)); });
    });
    const env = Object.fromEntries([...out.matchAll(/(COSMOS_BACKUP_AZURE_[A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
    assert.deepEqual(Object.keys(env).sort(), ['COSMOS_BACKUP_AZURE_ARM_ENDPOINT', 'COSMOS_BACKUP_AZURE_AUTHORITY_HOST', 'COSMOS_BACKUP_AZURE_CA_FILE', 'COSMOS_BACKUP_AZURE_POLL_INTERVAL_MS']);
    const sa = JSON.parse(/-d '(\{.*\})' \S+\/service-accounts$/m.exec(out)![1]!);
    const pgPort = Number(/PostgreSQL\s+postgres(?:ql)?:\/\/[^@\s]*@[^:\s]+:(\d+)/.exec(out)?.[1]);
    assert.ok(pgPort > 0, 'the PostgreSQL address is printed');
    const caFile = env.COSMOS_BACKUP_AZURE_CA_FILE!;

    // the controller as `npm start` would configure it from those variables
    const cloud = new AzureCloudGateway(loadAzureSettings(env));
    const ctl = await startController({ config: testConfig(tempDir()), gateways: { ...fakeGateways(), cloud }, azure: cloud });
    try {
      const api = client(ctl.app, ctl.bootstrapToken);
      const created = await api.post('/service-accounts', sa);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const check = await api.post(`/service-accounts/${created.body.id}/check`);
      assert.equal(check.body.error, null);
      assert.deepEqual(check.body.subscriptions.map((s: { name: string }) => s.name).sort(), ['Contoso Development', 'Contoso Production']);
      const scan = await api.post('/accounts/rescan', { serviceAccountId: created.body.id });
      assert.equal(scan.body[0].error, null);
      const all = (await api.get('/accounts')).body as { name: string; kind: string; deletedAt: string | null }[];
      assert.deepEqual(all.map((a) => a.name).sort(), ['dev-analytics', 'dev-catalog', 'dev-old', 'dev-orders', 'reports-periodic', 'shop-analytics', 'shop-catalog', 'shop-orders', 'shop-sessions', 'social-graph', 'social-legacy']);
      assert.deepEqual([...new Set(all.map((a) => a.kind))].sort(), ['Cassandra', 'Gremlin', 'MongoRU', 'NoSql', 'PostgreSQL', 'Table']);
      assert.ok(all.find((a) => a.name === 'dev-old')!.deletedAt, 'the deleted account is listed as deleted');
    } finally {
      await ctl.close();
    }

    assert.ok(existsSync(caFile));
    assert.equal(await listening(pgPort), true);
    child.kill('SIGINT');
    assert.equal(await exited, 0, err.slice(-2000));
    assert.equal(existsSync(caFile), false, 'the run\'s CA is deleted');
    assert.equal(await listening(Number(new URL(env.COSMOS_BACKUP_AZURE_ARM_ENDPOINT!).port)), false, 'the simulator is stopped');
    assert.equal(await listening(pgPort), false, 'its PostgreSQL is stopped');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
