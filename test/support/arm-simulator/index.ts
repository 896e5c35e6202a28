// THE ARM SIMULATOR (test stand-in for Azure Resource Manager and Entra ID). See server.ts.
import tls from 'node:tls';
import { ClientSecretCredential } from '@azure/identity';
import type { ArmSimulator } from './server.ts';

export { ArmSimulator, startArmSimulator, type Faults, type LoggedRequest } from './server.ts';
export type { AzuriteEndpoints } from './infra.ts';
export type { ScriptRun, VmProcess } from './vm-runtime.ts';
export type { AccountSeed, ClusterSeed, ApiKind, Tier } from './model.ts';

/** SDK client options that reach the simulator: its endpoint, token scope and CA. */
export function simClientOptions(sim: ArmSimulator) {
  return { endpoint: sim.url, credentialScopes: [`${sim.url}/.default`], credentials: { scopes: [`${sim.url}/.default`] }, tlsOptions: { ca: [...tls.rootCertificates, sim.caCert] }, retryOptions: { maxRetries: 6, retryDelayInMs: 10 } };
}

/** A real ClientSecretCredential signing in at the simulator. */
export function simCredential(sim: ArmSimulator, tenantId: string, clientId: string, secret: string): ClientSecretCredential {
  return new ClientSecretCredential(tenantId, clientId, secret, { authorityHost: sim.url, disableInstanceDiscovery: true, tlsOptions: { ca: [...tls.rootCertificates, sim.caCert] } });
}
