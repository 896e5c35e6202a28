// Test harness: Azurite (Microsoft's Blob/Queue emulator, npm package) started per test run.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { freePort, waitForPort } from './ports.ts';
import { reapOnDeath } from './reaper.ts';

/** Azurite's well-known development account (public, documented by Microsoft). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteServer {
  blobPort: number;
  queuePort: number;
  account: string;
  accountKey: string;
  blobEndpoint: string;
  queueEndpoint: string;
  connectionString: string;
  stop(): Promise<void>;
}

function describe(blobPort: number, queuePort: number): Omit<AzuriteServer, 'stop'> {
  const blobEndpoint = `http://127.0.0.1:${blobPort}/${AZURITE_ACCOUNT}`;
  const queueEndpoint = `http://127.0.0.1:${queuePort}/${AZURITE_ACCOUNT}`;
  return {
    blobPort, queuePort, account: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, blobEndpoint, queueEndpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobEndpoint};QueueEndpoint=${queueEndpoint};`,
  };
}

export async function startAzurite(): Promise<AzuriteServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cosmos-backup-azurite-'));
  const blobPort = await freePort();
  const queuePort = await freePort();
  const tablePort = await freePort();
  const require = createRequire(import.meta.url);
  const entry = path.join(path.dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
  const child = spawn(process.execPath, [entry, '--silent', '--skipApiVersionCheck', '--loose',
    '--location', dir, '--blobHost', '127.0.0.1', '--blobPort', String(blobPort), '--queueHost', '127.0.0.1', '--queuePort', String(queuePort),
    '--tableHost', '127.0.0.1', '--tablePort', String(tablePort)], { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  reapOnDeath(child.pid!, dir, 'TERM');
  let stopped = false;
  process.once('exit', () => { if (!stopped) { try { child.kill('SIGKILL'); } catch { /* gone */ } try { rmSync(dir, { recursive: true, force: true }); } catch { /* reaper */ } } });
  await Promise.race([
    Promise.all([waitForPort(blobPort), waitForPort(queuePort)]),
    exited.then(() => { throw new Error(`azurite exited at start: ${stderr}`); }),
  ]);
  return {
    ...describe(blobPort, queuePort),
    async stop() {
      if (stopped) return;
      stopped = true;
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let shared: Promise<AzuriteServer> | undefined;

/** The run's Azurite. Under `npm test` one instance serves the whole run (COSMOS_TEST_AZURITE). */
export function useAzurite(): Promise<AzuriteServer> {
  if (!shared) {
    const env = process.env.COSMOS_TEST_AZURITE;
    if (env) {
      const { blobPort, queuePort } = JSON.parse(env) as { blobPort: number; queuePort: number };
      shared = Promise.resolve({ ...describe(blobPort, queuePort), stop: async () => { /* owned by the runner */ } });
    } else {
      shared = startAzurite();
    }
  }
  return shared;
}
