// Where a worker connects to dump or load a database, read from Azure at session time: the
// coordinator of a Cosmos DB for PostgreSQL cluster (with the login stored for it), or the
// connection string of a Cosmos DB for MongoDB account from listConnectionStrings (its key is
// never stored by the controller; it goes sealed to the worker and nowhere else).
import { CosmosBackupError } from '../../shared/errors.ts';
import type { CloudAccount } from '../policies/scope.ts';
import type { DatabaseLogin } from '../sessions/gateways.ts';
import type { AzureClients } from './clients.ts';
import { azureError } from './errors.ts';

export interface DatabaseEndpoint {
  engine: 'postgres' | 'mongodb';
  host: string;
  port: number;
  user: string;
  password: string;
  tls: 'disable' | 'require' | 'verify-ca' | 'verify-full';
  srv: boolean;
  /** non-secret driver/URI options (MongoDB: replicaSet, retrywrites, authSource…) */
  options: Record<string, string>;
}

const CLUSTER_API = '2022-11-08';
const SECRET_OPTION = /pass|secret|key|token|sig/i;

/** host or host:port (a coordinator FQDN may carry a port) */
function hostPort(s: string, defaultPort: number): { host: string; port: number } {
  const m = /^(.*?)(?::(\d+))?$/.exec(s)!;
  return { host: m[1]!, port: m[2] ? Number(m[2]) : defaultPort };
}

/** A MongoDB connection string split into the parts the queue protocol carries (pure). */
export function parseMongoConnectionString(cs: string): Omit<DatabaseEndpoint, 'engine'> {
  let u: URL;
  try {
    u = new URL(cs);
  } catch {
    throw new CosmosBackupError('INVALID_ARGUMENT', 'the account\'s MongoDB connection string is not a URL');
  }
  const srv = u.protocol === 'mongodb+srv:';
  if (!srv && u.protocol !== 'mongodb:') throw new CosmosBackupError('INVALID_ARGUMENT', `unexpected MongoDB connection string scheme ${u.protocol}`);
  if (u.host.includes(',')) throw new CosmosBackupError('INVALID_ARGUMENT', 'MongoDB connection strings with several hosts are not supported; use the account\'s primary connection string');
  const options: Record<string, string> = {};
  let tls: DatabaseEndpoint['tls'] = srv ? 'verify-full' : 'disable';
  for (const [k, v] of u.searchParams) {
    const key = k.toLowerCase();
    if (key === 'ssl' || key === 'tls') { tls = v === 'true' ? 'verify-full' : 'disable'; continue; }
    if (key === 'tlsallowinvalidcertificates' || key === 'tlsinsecure') { if (v === 'true' && tls !== 'disable') tls = 'require'; continue; }
    if (SECRET_OPTION.test(k) || !/^[A-Za-z][A-Za-z0-9_.]*$/.test(k)) continue;
    options[k] = v;
  }
  const path = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (path && !options.authSource) options.authSource = path;
  const { host, port } = hostPort(u.host, 27017);
  return { host, port, user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), tls, srv, options };
}

interface ClusterJson { properties?: { serverNames?: Array<{ name?: string; fullyQualifiedDomainName?: string }>; administratorLogin?: string } }

export async function databaseEndpoint(c: AzureClients, account: CloudAccount, login: DatabaseLogin | null): Promise<DatabaseEndpoint> {
  if (account.kind === 'PostgreSQL') {
    if (!login) throw new CosmosBackupError('INVALID_ARGUMENT', `${account.name}: no database login stored for this cluster`);
    let cluster: ClusterJson;
    try {
      cluster = await c.arm.getResource<ClusterJson>(account.id, CLUSTER_API);
    } catch (e) {
      throw azureError(e, `reading cluster ${account.name}`);
    }
    const servers = cluster.properties?.serverNames ?? [];
    const coordinator = servers.find((s) => s.name?.endsWith('-c')) ?? servers[0];
    if (!coordinator?.fullyQualifiedDomainName) throw new CosmosBackupError('NOT_FOUND', `${account.name}: Azure reports no coordinator for this cluster`);
    const { host, port } = hostPort(coordinator.fullyQualifiedDomainName, 5432);
    return { engine: 'postgres', host, port, user: login.username, password: login.password, tls: login.sslmode ?? 'verify-full', srv: false, options: { application_name: 'cosmos-backup' } };
  }
  if (account.kind === 'MongoRU') {
    let list;
    try {
      list = await c.cosmos(account.subscriptionId).databaseAccounts.listConnectionStrings(account.resourceGroup, account.name);
    } catch (e) {
      throw azureError(e, `reading the connection strings of ${account.name}`);
    }
    const cs = list.connectionStrings?.find((x) => x.connectionString?.startsWith('mongodb'))?.connectionString;
    if (!cs) throw new CosmosBackupError('NOT_FOUND', `${account.name}: Azure returned no MongoDB connection string`);
    return { engine: 'mongodb', ...parseMongoConnectionString(cs) };
  }
  throw new CosmosBackupError('INVALID_ARGUMENT', `${account.name} is a ${account.kind} account: only PostgreSQL clusters and MongoDB accounts are dumped by workers`);
}
