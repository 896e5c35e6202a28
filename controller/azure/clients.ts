// Azure SDK clients for one service account: the credential (client secret or managed identity),
// Cosmos DB and resource-manager clients per subscription, and a small typed client over
// @azure/core-client for what has no installed management package (subscriptions, role
// permissions). All share the cloud's endpoints, the retry settings and the optional CA bundle.
import tls from 'node:tls';
import { ClientSecretCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
import { ResourceManagementClient } from '@azure/arm-resources';
import { ServiceClient, createSerializer, type OperationSpec } from '@azure/core-client';
import { CosmosBackupError } from '../../shared/errors.ts';
import type { ServiceAccountCredentials } from '../db/config-store.ts';
import type { AzureSettings } from './settings.ts';

const serializer = createSerializer({}, false);
const anyBody = { bodyMapper: { type: { name: 'any' as const } } };
const errorBody = { bodyMapper: { type: { name: 'any' as const } } };

const accept = { parameterPath: 'accept', mapper: { defaultValue: 'application/json', isConstant: true, serializedName: 'Accept', type: { name: 'String' as const } } };
function getSpec(path: string, apiVersion: string): OperationSpec {
  return {
    httpMethod: 'GET', path, serializer, headerParameters: [accept], responses: { 200: anyBody, default: errorBody },
    queryParameters: [{ parameterPath: 'apiVersion', mapper: { serializedName: 'api-version', defaultValue: apiVersion, isConstant: true, type: { name: 'String' } } }],
  };
}
/** nextLinks are absolute and already carry api-version and the continuation token. */
const nextSpec: OperationSpec = {
  httpMethod: 'GET', path: '{nextLink}', serializer, headerParameters: [accept], responses: { 200: anyBody, default: errorBody },
  urlParameters: [{ parameterPath: 'nextLink', mapper: { serializedName: 'nextLink', required: true, type: { name: 'String' } }, skipEncoding: true }],
};

export interface Subscription { subscriptionId: string; displayName: string; tenantId: string; state: string }
export interface Permission { actions: string[]; notActions: string[] }

/** Subscriptions and role permissions: ARM routes without an installed management package. */
class ArmReadClient extends ServiceClient {
  constructor(credential: TokenCredential, host: string, options: ConstructorParameters<typeof ServiceClient>[0]) {
    super({ ...options, credential, baseUri: host });
  }
  async #list<T>(path: string, apiVersion: string): Promise<T[]> {
    const out: T[] = [];
    let page = await this.sendOperationRequest<{ value?: T[]; nextLink?: string }>({}, getSpec(path, apiVersion));
    out.push(...(page.value ?? []));
    while (page.nextLink) {
      page = await this.sendOperationRequest<{ value?: T[]; nextLink?: string }>({ nextLink: page.nextLink }, nextSpec);
      out.push(...(page.value ?? []));
    }
    return out;
  }
  /** One resource by its ARM id. */
  getResource<T>(id: string, apiVersion: string): Promise<T> {
    return this.sendOperationRequest<T>({}, getSpec(id, apiVersion));
  }
  listSubscriptions(): Promise<Subscription[]> { return this.#list('/subscriptions', '2022-12-01'); }
  listPermissions(scope: string): Promise<Permission[]> {
    return this.#list(`${scope.replace(/\/+$/, '')}/providers/Microsoft.Authorization/permissions`, '2022-04-01');
  }
}

export interface AzureClients {
  credential: TokenCredential;
  cosmos(subscriptionId: string): CosmosDBManagementClient;
  resources(subscriptionId: string): ResourceManagementClient;
  arm: ArmReadClient;
  pollOptions: { updateIntervalInMs: number };
}

export function clientsFor(sa: ServiceAccountCredentials, s: AzureSettings): AzureClients {
  const tlsOptions = s.caBundle ? { ca: [...tls.rootCertificates, s.caBundle] } : undefined;
  const common = { ...(tlsOptions ? { tlsOptions } : {}), retryOptions: { maxRetries: s.maxRetries, retryDelayInMs: 500, maxRetryDelayInMs: 30_000 } };
  let credential: TokenCredential;
  if (sa.auth === 'secret') {
    if (!sa.clientId || !sa.clientSecret) throw new CosmosBackupError('INVALID_ARGUMENT', `service account ${sa.id} has no client id or secret`);
    credential = new ClientSecretCredential(sa.tenantId, sa.clientId, sa.clientSecret, {
      authorityHost: s.authorityHost, ...common,
      // Instance discovery asks login.microsoftonline.com about the authority: not for other clouds' hosts.
      disableInstanceDiscovery: s.authorityHost !== 'https://login.microsoftonline.com',
    });
  } else {
    credential = sa.clientId ? new ManagedIdentityCredential({ clientId: sa.clientId, ...common }) : new ManagedIdentityCredential(common);
  }
  const armOptions = { endpoint: s.armEndpoint, credentialScopes: [`${s.armEndpoint}/.default`], ...common };
  const cosmos = new Map<string, CosmosDBManagementClient>();
  const resources = new Map<string, ResourceManagementClient>();
  return {
    credential,
    cosmos: (sub) => cosmos.get(sub) ?? cosmos.set(sub, new CosmosDBManagementClient(credential, sub, armOptions)).get(sub)!,
    resources: (sub) => resources.get(sub) ?? resources.set(sub, new ResourceManagementClient(credential, sub, armOptions)).get(sub)!,
    arm: new ArmReadClient(credential, s.armEndpoint, { credentialScopes: [`${s.armEndpoint}/.default`], ...common }),
    pollOptions: { updateIntervalInMs: s.pollIntervalMs },
  };
}
