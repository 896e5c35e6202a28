// The ARM side of short-lived worker VMs: resource group, worker network, the regional storage
// account (optionally behind private endpoints), the VM itself, managed Run Commands on it and
// its removal. Every call is idempotent: it reuses what exists and creates what is missing, so a
// controller that crashed half-way can simply call it again.
import { createHash, generateKeyPair } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import type { TokenCredential } from '@azure/identity';
import { ComputeManagementClient, type VirtualMachineRunCommandInstanceView } from '@azure/arm-compute';
import { NetworkManagementClient } from '@azure/arm-network';
import { StorageManagementClient, type StorageAccount } from '@azure/arm-storage';
import { PrivateDnsManagementClient } from '@azure/arm-privatedns';
import { ResourceManagementClient } from '@azure/arm-resources';
import { CosmosBackupError } from '../../shared/errors.ts';
import { azureError } from '../azure/errors.ts';
import { normRegion } from '../azure/discovery.ts';
import type { AzureSettings } from '../azure/settings.ts';

/** Tag key on everything the controller creates; the value is the controller's id. */
export const CONTROLLER_TAG = 'cosmos-backup-controller';

export interface InfraClients {
  compute: ComputeManagementClient;
  network: NetworkManagementClient;
  storage: StorageManagementClient;
  dns: PrivateDnsManagementClient;
  resources: ResourceManagementClient;
  pollOptions: { updateIntervalInMs: number };
}

/** Clients for one subscription, built like controller/azure/clients.ts (endpoint, scopes, CA, retries). */
export function infraClients(credential: TokenCredential, subscriptionId: string, settings: AzureSettings): InfraClients {
  const tlsOptions = settings.caBundle ? { ca: [...tls.rootCertificates, settings.caBundle] } : undefined;
  const scope = `${settings.armEndpoint}/.default`;
  // The classic clients (network, DNS, resources) read credentialScopes; the modular ones
  // (compute 24, storage 20) read credentials.scopes.
  const options = {
    endpoint: settings.armEndpoint, credentialScopes: [scope], credentials: { scopes: [scope] },
    ...(tlsOptions ? { tlsOptions } : {}),
    retryOptions: { maxRetries: settings.maxRetries, retryDelayInMs: 500, maxRetryDelayInMs: 30_000 },
  };
  return {
    compute: new ComputeManagementClient(credential, subscriptionId, options),
    network: new NetworkManagementClient(credential, subscriptionId, options),
    storage: new StorageManagementClient(credential, subscriptionId, options),
    dns: new PrivateDnsManagementClient(credential, subscriptionId, options),
    resources: new ResourceManagementClient(credential, subscriptionId, options),
    pollOptions: { updateIntervalInMs: settings.pollIntervalMs },
  };
}

export interface Placement { subscriptionId: string; resourceGroup: string; region: string; controllerId: string }

const tags = (p: Placement) => ({ [CONTROLLER_TAG]: p.controllerId });
const is404 = (e: unknown) => (e as { statusCode?: number }).statusCode === 404;
const same = (a: string | undefined, b: string | undefined) => (a ?? '').toLowerCase() === (b ?? '').toLowerCase();
const lastSeg = (id: string) => id.split('/').pop()!;
const rgOf = (id: string) => /\/resourceGroups\/([^/]+)/i.exec(id)?.[1] ?? '';

/** The SDK call's result, or null on 404; anything else becomes one line naming the resource. */
async function orNull<T>(call: () => Promise<T>, doing: string): Promise<T | null> {
  try { return await call(); } catch (e) {
    if (is404(e)) return null;
    throw azureError(e, doing);
  }
}
async function arm<T>(call: () => PromiseLike<T>, doing: string): Promise<T> {
  try { return await call(); } catch (e) { throw azureError(e, doing); }
}

/** deterministic 3-24 lowercase alnum name: 'cb' + sha256(controllerId|subscriptionId|region[|private]) hex cut to 22 */
export function storageAccountName(controllerId: string, subscriptionId: string, region: string, privateNetwork = false): string {
  // The private account is another account: one with public network access cannot turn private
  // while public workers use it, nor the other way round.
  const h = createHash('sha256').update(`${controllerId}|${subscriptionId.toLowerCase()}|${normRegion(region)}${privateNetwork ? '|private' : ''}`).digest('hex');
  return `cb${h.slice(0, 22)}`;
}

/** Creates the resource group (region, controller tag) unless it exists; an existing one is left as is (its tags are the owner's). */
export async function ensureResourceGroup(c: InfraClients, p: Placement): Promise<void> {
  const doing = `resource group ${p.resourceGroup}`;
  if (await orNull(() => c.resources.resourceGroups.get(p.resourceGroup), doing)) return;
  await arm(() => c.resources.resourceGroups.createOrUpdate(p.resourceGroup, { location: normRegion(p.region), tags: tags(p) }), `${doing}: creating`);
}

// ---------- network ----------

export interface WorkerNetwork { vnetId: string; subnetId: string; endpointSubnetId: string; nsgId: string | null; created: string[] }
export interface GivenNetwork { virtualNetwork?: string | null; subnet?: string | null; networkSecurityGroup?: string | null }

const WORKERS_PREFIX = '10.77.1.0/24';
const ENDPOINTS_PREFIX = '10.77.2.0/24';

/**
 * Without `given`: create or reuse vnet `cb-workers-<region>` (10.77.0.0/16) with subnet 'workers'
 * (NSG `cb-workers-<region>-nsg` denying inbound from Internet) and subnet 'endpoints' (private
 * endpoint policies off), all tagged. With `given` (ARM ids, or names in p.resourceGroup): verify
 * they exist and are in p.region, and use the given subnet for both. `created` lists the ARM ids
 * created by this call, in creation order (a vnet created with its subnets is listed alone).
 */
export async function ensureWorkerNetwork(c: InfraClients, p: Placement, given?: GivenNetwork): Promise<WorkerNetwork> {
  if (given && (given.virtualNetwork || given.subnet)) return givenNetwork(c, p, given);
  if (given?.networkSecurityGroup) throw new CosmosBackupError('INVALID_ARGUMENT', 'worker network: a network security group can only be given together with a virtual network and subnet');
  const region = normRegion(p.region);
  const rg = p.resourceGroup;
  const vnetName = `cb-workers-${region}`;
  const nsgName = `${vnetName}-nsg`;
  const created: string[] = [];
  const poll = c.pollOptions;

  let nsg = await orNull(() => c.network.networkSecurityGroups.get(rg, nsgName), `network security group ${nsgName} (${rg})`);
  if (!nsg) {
    nsg = await arm(() => c.network.networkSecurityGroups.beginCreateOrUpdateAndWait(rg, nsgName, {
      location: region, tags: tags(p),
      // Workers are reached only through Run Command: nothing from the Internet, ever.
      securityRules: [{
        name: 'deny-internet-inbound', priority: 4000, direction: 'Inbound', access: 'Deny', protocol: '*',
        sourceAddressPrefix: 'Internet', sourcePortRange: '*', destinationAddressPrefix: '*', destinationPortRange: '*',
      }],
    }, poll), `network security group ${nsgName} (${rg}): creating`);
    created.push(nsg.id!);
  }
  // Workers reach Cosmos DB, PostgreSQL and MongoDB on their public endpoints without a public IP:
  // ask for default outbound access explicitly, as newer API versions make subnets private by default.
  const workers = { name: 'workers', addressPrefix: WORKERS_PREFIX, networkSecurityGroup: { id: nsg.id! }, defaultOutboundAccess: true };
  const endpoints = { name: 'endpoints', addressPrefix: ENDPOINTS_PREFIX, privateEndpointNetworkPolicies: 'Disabled' as const };

  const doing = `virtual network ${vnetName} (${rg})`;
  let vnet = await orNull(() => c.network.virtualNetworks.get(rg, vnetName), doing);
  if (!vnet) {
    vnet = await arm(() => c.network.virtualNetworks.beginCreateOrUpdateAndWait(rg, vnetName, {
      location: region, tags: tags(p), addressSpace: { addressPrefixes: ['10.77.0.0/16'] }, subnets: [workers, endpoints],
    }, poll), `${doing}: creating`);
    created.push(vnet.id!);
  } else {
    // Subnets are added one by one: a PUT of the vnet would drop subnets someone else added.
    for (const s of [workers, endpoints]) {
      if (vnet.subnets?.some((x) => same(x.name, s.name))) continue;
      const made = await arm(() => c.network.subnets.beginCreateOrUpdateAndWait(rg, vnetName, s.name, s, poll), `${doing}: adding subnet ${s.name}`);
      created.push(made.id!);
    }
  }
  return { vnetId: vnet.id!, subnetId: `${vnet.id}/subnets/workers`, endpointSubnetId: `${vnet.id}/subnets/endpoints`, nsgId: nsg.id!, created };
}

interface NetRef { resourceGroup: string; names: string[] }

/** An ARM id of `type` (e.g. ['virtualNetworks', 'subnets']) or a plain name in p.resourceGroup. */
function netRef(ref: string, types: string[], p: Placement, what: string): NetRef {
  if (!ref.startsWith('/')) {
    if (types.length > 1 || ref.includes('/')) throw new CosmosBackupError('INVALID_ARGUMENT', `${what}: expected an ARM id or a plain name, got ${ref}`);
    return { resourceGroup: p.resourceGroup, names: [ref] };
  }
  const typePath = types.map((t) => `/${t}/([^/]+)`).join('');
  const m = new RegExp(`^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\\.Network${typePath}/?$`, 'i').exec(ref);
  if (!m) throw new CosmosBackupError('INVALID_ARGUMENT', `${what}: not an ARM id of Microsoft.Network/${types.join('/')}: ${ref}`);
  // A worker's NIC must live in the subscription of its subnet, and workers go to p.subscriptionId.
  if (!same(m[1], p.subscriptionId)) throw new CosmosBackupError('INVALID_ARGUMENT', `${what}: ${ref} is not in subscription ${p.subscriptionId} where the workers run`);
  return { resourceGroup: m[2]!, names: m.slice(3) };
}

function sameRegion(found: string | undefined, p: Placement, what: string): void {
  if (normRegion(found ?? '') !== normRegion(p.region)) {
    throw new CosmosBackupError('INVALID_ARGUMENT', `${what} is in ${found ?? 'an unknown region'}, but workers for ${normRegion(p.region)} need a network in that region`);
  }
}

async function givenNetwork(c: InfraClients, p: Placement, given: GivenNetwork): Promise<WorkerNetwork> {
  if (!given.subnet) throw new CosmosBackupError('INVALID_ARGUMENT', `worker network: virtual network ${given.virtualNetwork} is given without the subnet for workers`);
  let rg: string, vnetName: string, subnetName: string;
  if (given.subnet.startsWith('/')) {
    const s = netRef(given.subnet, ['virtualNetworks', 'subnets'], p, 'worker subnet');
    [rg, vnetName, subnetName] = [s.resourceGroup, s.names[0]!, s.names[1]!];
    if (given.virtualNetwork) {
      const v = netRef(given.virtualNetwork, ['virtualNetworks'], p, 'worker virtual network');
      if (!same(v.resourceGroup, rg) || !same(v.names[0], vnetName)) throw new CosmosBackupError('INVALID_ARGUMENT', `worker network: subnet ${given.subnet} is not in virtual network ${given.virtualNetwork}`);
    }
  } else {
    if (!given.virtualNetwork) throw new CosmosBackupError('INVALID_ARGUMENT', `worker network: subnet ${given.subnet} is given by name without its virtual network`);
    const v = netRef(given.virtualNetwork, ['virtualNetworks'], p, 'worker virtual network');
    [rg, vnetName, subnetName] = [v.resourceGroup, v.names[0]!, netRef(given.subnet, ['subnets'], p, 'worker subnet').names[0]!];
  }
  const vdoing = `virtual network ${vnetName} (resource group ${rg})`;
  const vnet = await arm(() => c.network.virtualNetworks.get(rg, vnetName), vdoing);
  sameRegion(vnet.location, p, vdoing);
  const subnet = await arm(() => c.network.subnets.get(rg, vnetName, subnetName), `subnet ${subnetName} of ${vdoing}`);
  let nsgId: string | null = null;
  if (given.networkSecurityGroup) {
    const n = netRef(given.networkSecurityGroup, ['networkSecurityGroups'], p, 'worker network security group');
    const ndoing = `network security group ${n.names[0]} (resource group ${n.resourceGroup})`;
    const nsg = await arm(() => c.network.networkSecurityGroups.get(n.resourceGroup, n.names[0]!), ndoing);
    sameRegion(nsg.location, p, ndoing);
    nsgId = nsg.id!;
  }
  return { vnetId: vnet.id!, subnetId: subnet.id!, endpointSubnetId: subnet.id!, nsgId, created: [] };
}

// ---------- regional storage ----------

export interface RegionalStorage { name: string; id: string; blobEndpoint: string; queueEndpoint: string; accountKey: string; sharedKeyAccountName: string; created: boolean }

/** The account name for a shared-key credential: path-style endpoints (an IP or localhost host, as
 *  Azurite and the Azure Stack/emulator layouts use) carry it as their first path segment. */
function sharedKeyName(blobEndpoint: string, armName: string): string {
  const u = new URL(blobEndpoint);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!isIP(host) && host !== 'localhost') return armName;
  return u.pathname.split('/').find(Boolean) ?? armName;
}

/**
 * Reuse the storage account in p.region tagged CONTROLLER_TAG=controllerId anywhere in the
 * subscription whose public network access fits the mode (disabled for privateNetwork, else not
 * disabled), else the one with the deterministic name of the mode in p.resourceGroup, else
 * create it (StorageV2, Standard_LRS, TLS 1.2, HTTPS only, no public blob access, public network
 * access disabled when privateNetwork). The account key comes from listKeys.
 */
export async function ensureRegionalStorage(c: InfraClients, p: Placement, opts: { privateNetwork: boolean }): Promise<RegionalStorage> {
  const wanted = storageAccountName(p.controllerId, p.subscriptionId, p.region, opts.privateNetwork);
  const region = normRegion(p.region);
  // A private deployment must not reach an account the internet reaches too, and public workers
  // cannot reach a private one.
  const fits = (a: StorageAccount) => (a.publicNetworkAccess === 'Disabled') === opts.privateNetwork;
  // storageAccounts.list is read from the storage provider itself, unlike the generic resources
  // list (an eventually consistent cache that can miss an account created moments ago).
  const tagged: StorageAccount[] = [];
  await arm(async () => {
    for await (const a of c.storage.storageAccounts.list()) {
      if (a.tags?.[CONTROLLER_TAG] === p.controllerId && normRegion(a.location ?? '') === region && fits(a)) tagged.push(a);
    }
  }, `subscription ${p.subscriptionId}: listing storage accounts`);
  tagged.sort((a, b) => Number(b.name === wanted) - Number(a.name === wanted) || a.name!.localeCompare(b.name!));
  const doing = `storage account ${wanted} (${p.resourceGroup})`;
  let account: StorageAccount | null = tagged[0] ?? await orNull(() => c.storage.storageAccounts.getProperties(p.resourceGroup, wanted), doing);
  if (account && !fits(account)) {
    throw new CosmosBackupError('INVALID_ARGUMENT', `${doing} has public network access ${account.publicNetworkAccess ?? 'Enabled'}, but this ${opts.privateNetwork ? 'private' : 'public'} deployment needs it ${opts.privateNetwork ? 'Disabled' : 'Enabled'}: set it back, or delete the account so that it is made again`);
  }
  let created = false;
  if (!account) {
    account = await arm(() => c.storage.storageAccounts.create(p.resourceGroup, wanted, {
      location: region, kind: 'StorageV2', sku: { name: 'Standard_LRS' }, tags: tags(p),
      minimumTlsVersion: 'TLS1_2', enableHttpsTrafficOnly: true, allowBlobPublicAccess: false,
      publicNetworkAccess: opts.privateNetwork ? 'Disabled' : 'Enabled',
    }, c.pollOptions), `${doing}: creating`);
    created = true;
  }
  return { ...await storageAccess(c, account), created };
}

/** Endpoints and key of a storage account (a regional one, or one recorded by its ARM id). */
export async function storageAccess(c: InfraClients, account: StorageAccount | string): Promise<Omit<RegionalStorage, 'created'>> {
  if (typeof account === 'string') {
    const id = account;
    account = await arm(() => c.storage.storageAccounts.getProperties(rgOf(id), id.split('/').pop()!), `storage account ${id}`);
  }
  const name = account.name!;
  const rg = rgOf(account.id!);
  const blob = account.primaryEndpoints?.blob;
  const queue = account.primaryEndpoints?.queue;
  if (!blob || !queue) throw new CosmosBackupError('INTERNAL', `storage account ${name} (${rg}): Azure returned no blob or queue endpoint`);
  const keys = await arm(() => c.storage.storageAccounts.listKeys(rg, name), `storage account ${name} (${rg}): listing keys`);
  const accountKey = keys.keys?.find((k) => k.value)?.value;
  if (!accountKey) throw new CosmosBackupError('STORAGE_AUTH', `storage account ${name} (${rg}): listKeys returned no key (is shared key access disabled?)`);
  const blobEndpoint = blob.replace(/\/+$/, '');
  return { name, id: account.id!, blobEndpoint, queueEndpoint: queue.replace(/\/+$/, ''), accountKey, sharedKeyAccountName: sharedKeyName(blobEndpoint, name) };
}

// ---------- private endpoints ----------

const ENDPOINT_GROUPS = ['blob', 'queue'] as const;

/**
 * Private endpoints `cb-pe-<account>-blob|queue` in net.endpointSubnetId, the zones
 * privatelink.blob|queue.core.windows.net (global) in p.resourceGroup, a link from each zone to
 * net.vnetId (an existing link to that vnet under any name counts) and a zone group 'default' per
 * endpoint. Returns the ARM ids created now.
 */
export async function ensurePrivateEndpoints(c: InfraClients, p: Placement, storage: { id: string; name: string }, net: WorkerNetwork): Promise<string[]> {
  const rg = p.resourceGroup;
  const poll = c.pollOptions;
  const created: string[] = [];
  const vnetName = lastSeg(net.vnetId);
  const linkName = `cb-${vnetName.slice(0, 60)}-${createHash('sha256').update(net.vnetId.toLowerCase()).digest('hex').slice(0, 8)}`;
  for (const group of ENDPOINT_GROUPS) {
    const peName = `cb-pe-${storage.name}-${group}`;
    const peDoing = `private endpoint ${peName} (${rg})`;
    let pe = await orNull(() => c.network.privateEndpoints.get(rg, peName), peDoing);
    if (!pe) {
      pe = await arm(() => c.network.privateEndpoints.beginCreateOrUpdateAndWait(rg, peName, {
        location: normRegion(p.region), tags: tags(p), subnet: { id: net.endpointSubnetId },
        privateLinkServiceConnections: [{ name: `${storage.name}-${group}`, privateLinkServiceId: storage.id, groupIds: [group] }],
      }, poll), `${peDoing}: creating`);
      created.push(pe.id!);
    }

    const zoneName = `privatelink.${group}.core.windows.net`;
    const zoneDoing = `private DNS zone ${zoneName} (${rg})`;
    let zone = await orNull(() => c.dns.privateZones.get(rg, zoneName), zoneDoing);
    if (!zone) {
      zone = await arm(() => c.dns.privateZones.beginCreateOrUpdateAndWait(rg, zoneName, { location: 'global', tags: tags(p) }, poll), `${zoneDoing}: creating`);
      created.push(zone.id!);
    }

    let linked = false;
    await arm(async () => {
      for await (const l of c.dns.virtualNetworkLinks.list(rg, zoneName)) if (same(l.virtualNetwork?.id, net.vnetId)) linked = true;
    }, `${zoneDoing}: listing virtual network links`);
    if (!linked) {
      const link = await arm(() => c.dns.virtualNetworkLinks.beginCreateOrUpdateAndWait(rg, zoneName, linkName, {
        location: 'global', tags: tags(p), virtualNetwork: { id: net.vnetId }, registrationEnabled: false,
      }, poll), `${zoneDoing}: linking virtual network ${vnetName}`);
      created.push(link.id!);
    }

    const zgDoing = `DNS zone group default of ${peDoing}`;
    if (!await orNull(() => c.network.privateDnsZoneGroups.get(rg, peName, 'default'), zgDoing)) {
      const zg = await arm(() => c.network.privateDnsZoneGroups.beginCreateOrUpdateAndWait(rg, peName, 'default', {
        privateDnsZoneConfigs: [{ name: zoneName.replace(/\./g, '-'), privateDnsZoneId: zone.id }],
      }, poll), `${zgDoing}: creating`);
      created.push(zg.id!);
    }
  }
  return created;
}

// ---------- virtual machines ----------

export interface VmSpec { name: string; vmSize: string; subnetId: string; nsgId?: string | null; userAssignedIdentityId?: string | null; tags: Record<string, string> }

export const WORKER_IMAGE = { publisher: 'Canonical', offer: '0001-com-ubuntu-server-jammy', sku: '22_04-lts-gen2', version: 'latest' } as const;
export const WORKER_ADMIN = 'cbadmin';

/** A fresh RSA 2048 public key in OpenSSH format. Azure requires one for a Linux VM without a
 *  password; the private key is never kept, so Run Command is the only way in. */
async function throwawaySshKey(): Promise<string> {
  const { publicKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const mpint = (b64: string) => {
    const b = Buffer.from(b64, 'base64url');
    return b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
  };
  const field = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const blob = Buffer.concat([field(Buffer.from('ssh-rsa')), field(mpint(jwk.e!)), field(mpint(jwk.n!))]);
  return `ssh-rsa ${blob.toString('base64')} cosmos-backup-worker`;
}

const nicName = (vm: string) => `${vm}-nic`;
const diskName = (vm: string) => `${vm}-osdisk`;

/**
 * NIC `<name>-nic` (private IP only) and the VM: Ubuntu 22.04 LTS Gen2, StandardSSD OS disk
 * `<name>-osdisk`, NIC and disk deleted with the VM, admin `cbadmin` with a throwaway SSH key and
 * no password, the user-assigned identity when given. On failure the caller calls deleteWorkerVm,
 * which also removes a NIC or disk left without a VM.
 */
export async function createWorkerVm(c: InfraClients, p: Placement, spec: VmSpec): Promise<{ vmId: string; nicId: string; osDiskName: string | null }> {
  const rg = p.resourceGroup;
  const region = normRegion(p.region);
  const nic = await arm(() => c.network.networkInterfaces.beginCreateOrUpdateAndWait(rg, nicName(spec.name), {
    location: region, tags: spec.tags,
    ...(spec.nsgId ? { networkSecurityGroup: { id: spec.nsgId } } : {}),
    ipConfigurations: [{ name: 'ipconfig1', primary: true, subnet: { id: spec.subnetId }, privateIPAllocationMethod: 'Dynamic' }],
  }, c.pollOptions), `network interface ${nicName(spec.name)} (${rg}): creating`);
  const keyData = await throwawaySshKey();
  const vm = await arm(() => c.compute.virtualMachines.createOrUpdate(rg, spec.name, {
    location: region, tags: spec.tags,
    ...(spec.userAssignedIdentityId ? { identity: { type: 'UserAssigned', userAssignedIdentities: { [spec.userAssignedIdentityId]: {} } } } : {}),
    hardwareProfile: { vmSize: spec.vmSize },
    storageProfile: {
      imageReference: { ...WORKER_IMAGE },
      osDisk: { name: diskName(spec.name), createOption: 'FromImage', managedDisk: { storageAccountType: 'StandardSSD_LRS' }, deleteOption: 'Delete' },
    },
    osProfile: {
      computerName: spec.name, adminUsername: WORKER_ADMIN,
      linuxConfiguration: { disablePasswordAuthentication: true, provisionVMAgent: true, ssh: { publicKeys: [{ path: `/home/${WORKER_ADMIN}/.ssh/authorized_keys`, keyData }] } },
    },
    networkProfile: { networkInterfaces: [{ id: nic.id!, primary: true, deleteOption: 'Delete' }] },
  }, c.pollOptions), `virtual machine ${spec.name} (${rg}): creating`);
  return { vmId: vm.id!, nicId: nic.id!, osDiskName: vm.storageProfile?.osDisk?.name ?? null };
}

export interface ScriptResult { exitCode: number | null; executionState: string; output: string; error: string }

const TERMINAL = new Set(['succeeded', 'failed', 'timedout', 'canceled']);
function scriptResult(iv: VirtualMachineRunCommandInstanceView | undefined): ScriptResult {
  const state = iv?.executionState ?? 'Unknown';
  // Azure reports exitCode 0 while a script still runs: only a finished script has an exit code.
  return { exitCode: TERMINAL.has(state.toLowerCase()) ? (iv?.exitCode ?? null) : null, executionState: state, output: iv?.output ?? '', error: iv?.error ?? '' };
}
const params = (o: Record<string, string> | undefined) => Object.entries(o ?? {}).map(([name, value]) => ({ name, value }));

/**
 * Runs `script` as managed run command `name` (rerun when it exists) and waits for it; parameters
 * and protectedParameters become environment variables, the protected ones never returned by
 * Azure nor named in errors. A non-zero exit is a result, not an exception.
 */
export async function runScript(c: InfraClients, p: Placement, vmName: string, cmd: { name: string; script: string; parameters?: Record<string, string>; protectedParameters?: Record<string, string>; timeoutSeconds?: number }): Promise<ScriptResult> {
  const rg = p.resourceGroup;
  const doing = `run command ${cmd.name} on virtual machine ${vmName} (${rg})`;
  await arm(() => c.compute.virtualMachineRunCommands.createOrUpdate(rg, vmName, cmd.name, {
    location: normRegion(p.region), source: { script: cmd.script },
    parameters: params(cmd.parameters), protectedParameters: params(cmd.protectedParameters),
    asyncExecution: false, treatFailureAsDeploymentFailure: false,
    ...(cmd.timeoutSeconds ? { timeoutInSeconds: cmd.timeoutSeconds } : {}),
  }, c.pollOptions), doing);
  const rc = await arm(() => c.compute.virtualMachineRunCommands.getByVirtualMachine(rg, vmName, cmd.name, { expand: 'instanceView' }), `${doing}: reading its result`);
  return scriptResult(rc.instanceView);
}

/** Latest instanceView of an existing managed run command; null when it (or the VM) does not exist. */
export async function runScriptOutput(c: InfraClients, p: Placement, vmName: string, name: string): Promise<ScriptResult | null> {
  const rc = await orNull(() => c.compute.virtualMachineRunCommands.getByVirtualMachine(p.resourceGroup, vmName, name, { expand: 'instanceView' }),
    `run command ${name} on virtual machine ${vmName} (${p.resourceGroup})`);
  return rc ? scriptResult(rc.instanceView) : null;
}

/** Deletes the VM (waits), then its NICs and OS disk if they survived (or the conventional
 *  `<name>-nic`/`<name>-osdisk` when the VM itself is gone). Missing things are fine. */
export async function deleteWorkerVm(c: InfraClients, p: Placement, vmName: string): Promise<void> {
  const rg = p.resourceGroup;
  const doing = `virtual machine ${vmName} (${rg})`;
  const vm = await orNull(() => c.compute.virtualMachines.get(rg, vmName), doing);
  const nics = new Map<string, { rg: string; name: string }>([[`${rg}/${nicName(vmName)}`.toLowerCase(), { rg, name: nicName(vmName) }]]);
  const disks = new Map<string, string>([[diskName(vmName).toLowerCase(), diskName(vmName)]]);
  if (vm) {
    for (const n of vm.networkProfile?.networkInterfaces ?? []) if (n.id) nics.set(`${rgOf(n.id)}/${lastSeg(n.id)}`.toLowerCase(), { rg: rgOf(n.id), name: lastSeg(n.id) });
    const d = vm.storageProfile?.osDisk?.name;
    if (d) disks.set(d.toLowerCase(), d);
    await orNull(() => c.compute.virtualMachines.delete(rg, vmName, c.pollOptions), `${doing}: deleting`);
  }
  for (const n of nics.values()) {
    await orNull(() => c.network.networkInterfaces.beginDeleteAndWait(n.rg, n.name, c.pollOptions), `network interface ${n.name} (${n.rg}): deleting`);
  }
  for (const d of disks.values()) {
    await orNull(() => c.compute.disks.delete(rg, d, c.pollOptions), `disk ${d} (${rg}): deleting`);
  }
}

/** VMs in the subscription tagged CONTROLLER_TAG=controllerId (crash cleanup at start). */
export async function listTaggedVms(c: InfraClients, controllerId: string): Promise<Array<{ name: string; resourceGroup: string; region: string; id: string; tags: Record<string, string> }>> {
  const out: Array<{ name: string; resourceGroup: string; region: string; id: string; tags: Record<string, string> }> = [];
  // The compute provider's own list, not the generic resources cache: a VM created just before a
  // crash must not be missed.
  await arm(async () => {
    for await (const vm of c.compute.virtualMachines.listAll()) {
      if (vm.tags?.[CONTROLLER_TAG] !== controllerId) continue;
      out.push({ name: vm.name!, resourceGroup: rgOf(vm.id!), region: normRegion(vm.location ?? ''), id: vm.id!, tags: vm.tags });
    }
  }, 'listing virtual machines');
  return out;
}
