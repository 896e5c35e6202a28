// The ARM simulator's storage accounts (data plane = the run's Azurite), private endpoints and
// private DNS, through the real @azure/arm-storage, @azure/arm-network, @azure/arm-privatedns and
// @azure/storage-blob clients: what the controller's private network deployment relies on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { StorageManagementClient } from '@azure/arm-storage';
import { NetworkManagementClient } from '@azure/arm-network';
import { PrivateDnsManagementClient } from '@azure/arm-privatedns';
import { ResourceManagementClient } from '@azure/arm-resources';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { useAzurite, type AzuriteServer } from '../support/azurite.ts';
import { startArmSimulator, simClientOptions, simCredential, type ArmSimulator } from '../support/arm-simulator/index.ts';

const T = '0b6c7a3e-1111-4c4c-9a9a-00000000000a';
const S = '5d1f0c2a-2222-4d4d-8b8b-00000000000a';
const C = '7e2d1b4f-3333-4e4e-8c8c-00000000000a';
const RG = 'rg-private';
const LOC = 'northeurope';
const poll = { updateIntervalInMs: 5 };
let sim: ArmSimulator;
let azurite: AzuriteServer;
let storage: StorageManagementClient;
let network: NetworkManagementClient;
let dns: PrivateDnsManagementClient;
let resources: ResourceManagementClient;

before(async () => {
  azurite = await useAzurite();
  sim = await startArmSimulator({ azurite: { blobEndpoint: azurite.blobEndpoint, queueEndpoint: azurite.queueEndpoint, accountKey: azurite.accountKey } });
  sim.setLroPolls(2);
  sim.addSubscription(S, 'prod', T);
  sim.addPrincipal({ tenantId: T, clientId: C, secret: 'secret-a' });
  sim.state.ensureResourceGroup(S, RG, LOC);
  sim.state.ensureResourceGroup(S, 'rg-other', LOC);
  const cred = simCredential(sim, T, C, 'secret-a');
  storage = new StorageManagementClient(cred, S, simClientOptions(sim));
  network = new NetworkManagementClient(cred, S, simClientOptions(sim));
  dns = new PrivateDnsManagementClient(cred, S, simClientOptions(sim));
  resources = new ResourceManagementClient(cred, S, simClientOptions(sim));
});
after(async () => { await sim.stop(); });

test('storage account with tags: LRO create, get, lists, listKeys and endpoints that are the run\'s Azurite', async () => {
  const created = await storage.storageAccounts.create(RG, 'cbworkersne01', {
    location: LOC, kind: 'StorageV2', sku: { name: 'Standard_LRS' }, tags: { 'cosmos-backup': 'ctl-1' },
    publicNetworkAccess: 'Disabled', allowBlobPublicAccess: false, minimumTlsVersion: 'TLS1_2',
  }, poll);
  assert.equal(created.provisioningState, 'Succeeded');
  assert.equal(created.tags?.['cosmos-backup'], 'ctl-1');
  const put = sim.armRequests({ method: 'PUT', pathIncludes: '/storageAccounts/cbworkersne01' }).at(-1)!;
  assert.equal(put.status, 202, 'Azure answers a new account with 202 and a Location to poll');
  const got = await storage.storageAccounts.getProperties(RG, 'cbworkersne01');
  assert.equal(got.primaryEndpoints?.blob, `${azurite.blobEndpoint}/`);
  assert.equal(got.primaryEndpoints?.queue, `${azurite.queueEndpoint}/`);
  assert.equal(got.publicNetworkAccess, 'Disabled');
  await storage.storageAccounts.create('rg-other', 'cbother02', { location: LOC, kind: 'StorageV2', sku: { name: 'Standard_LRS' } }, poll);
  const all = [];
  for await (const a of storage.storageAccounts.list()) all.push(a.name);
  assert.deepEqual(all.sort(), ['cbother02', 'cbworkersne01']);
  const inRg = [];
  for await (const a of storage.storageAccounts.listByResourceGroup(RG)) inRg.push(a.name);
  assert.deepEqual(inRg, ['cbworkersne01']);
  await assert.rejects(storage.storageAccounts.create('rg-other', 'cbworkersne01', { location: LOC, kind: 'StorageV2', sku: { name: 'Standard_LRS' } }, poll),
    (e: { statusCode?: number; code?: string }) => e.statusCode === 409 && e.code === 'StorageAccountAlreadyTaken');

  // the data plane: listKeys + the endpoint reach Azurite (whose account name is devstoreaccount1)
  const keys = await storage.storageAccounts.listKeys(RG, 'cbworkersne01');
  const key = keys.keys![0]!.value!;
  const account = new URL(got.primaryEndpoints!.blob!).pathname.split('/')[1]!;
  assert.equal(account, 'devstoreaccount1');
  const blobs = new BlobServiceClient(got.primaryEndpoints!.blob!, new StorageSharedKeyCredential(account, key));
  const container = blobs.getContainerClient(`sim-${Date.now()}`);
  await container.create();
  await container.getBlockBlobClient('hello.txt').upload('hi', 2);
  assert.equal((await container.getBlockBlobClient('hello.txt').downloadToBuffer()).toString(), 'hi');

  const tagged = [];
  for await (const r of resources.resources.list({ filter: "tagName eq 'cosmos-backup' and tagValue eq 'ctl-1'" })) tagged.push(r.name);
  assert.deepEqual(tagged, ['cbworkersne01']);
});

test('private endpoints for blob and queue with private DNS zones, links and zone groups (A records)', async () => {
  const vnet = await network.virtualNetworks.beginCreateOrUpdateAndWait(RG, 'vnet-workers', {
    location: LOC, addressSpace: { addressPrefixes: ['10.30.0.0/16'] },
    subnets: [{ name: 'workers', addressPrefix: '10.30.1.0/24' }, { name: 'pe', addressPrefix: '10.30.2.0/24', privateEndpointNetworkPolicies: 'Disabled' }],
  }, poll);
  assert.equal(vnet.provisioningState, 'Succeeded');
  assert.deepEqual(vnet.subnets!.map((s) => s.name), ['workers', 'pe']);
  const peSubnet = vnet.subnets!.find((s) => s.name === 'pe')!.id!;
  const accountId = (await storage.storageAccounts.getProperties(RG, 'cbworkersne01')).id!;
  for (const group of ['blob', 'queue']) {
    const pe = await network.privateEndpoints.beginCreateOrUpdateAndWait(RG, `pe-${group}`, {
      location: LOC, subnet: { id: peSubnet },
      privateLinkServiceConnections: [{ name: group, privateLinkServiceId: accountId, groupIds: [group] }],
    }, poll);
    assert.equal(pe.provisioningState, 'Succeeded');
    assert.equal(pe.privateLinkServiceConnections![0]!.privateLinkServiceConnectionState!.status, 'Approved');
    assert.equal(pe.customDnsConfigs![0]!.fqdn, `cbworkersne01.${group}.core.windows.net`);
    const zone = await dns.privateZones.beginCreateOrUpdateAndWait(RG, `privatelink.${group}.core.windows.net`, { location: 'global' }, poll);
    assert.equal(zone.provisioningState, 'Succeeded');
    const link = await dns.virtualNetworkLinks.beginCreateOrUpdateAndWait(RG, zone.name!, 'link-workers', { location: 'global', virtualNetwork: { id: vnet.id }, registrationEnabled: false }, poll);
    assert.equal(link.virtualNetworkLinkState, 'Completed');
    const zg = await network.privateDnsZoneGroups.beginCreateOrUpdateAndWait(RG, `pe-${group}`, 'default', {
      privateDnsZoneConfigs: [{ name: group, privateDnsZoneId: zone.id }],
    }, poll);
    const rs = zg.privateDnsZoneConfigs![0]!.recordSets![0]!;
    assert.equal(rs.recordType, 'A');
    assert.equal(rs.fqdn, `cbworkersne01.privatelink.${group}.core.windows.net`);
    assert.deepEqual(rs.ipAddresses, pe.customDnsConfigs![0]!.ipAddresses);
    const a = await dns.recordSets.get(RG, zone.name!, 'A', 'cbworkersne01');
    assert.deepEqual(a.aRecords!.map((r) => r.ipv4Address), rs.ipAddresses);
  }
  const pes = [];
  for await (const p of network.privateEndpoints.list(RG)) pes.push(p.name);
  assert.deepEqual(pes.sort(), ['pe-blob', 'pe-queue']);
  const groups = [];
  for await (const g of network.privateDnsZoneGroups.list('pe-blob', RG)) groups.push(g.name);
  assert.deepEqual(groups, ['default']);
  const zones = [];
  for await (const z of dns.privateZones.listByResourceGroup(RG)) zones.push(z.name);
  assert.deepEqual(zones.sort(), ['privatelink.blob.core.windows.net', 'privatelink.queue.core.windows.net']);
  const subnet = await network.subnets.get(RG, 'vnet-workers', 'pe');
  assert.equal(subnet.privateEndpoints!.length, 2);
  // a wrong group id is refused; a subnet in use cannot be deleted
  await assert.rejects(network.privateEndpoints.beginCreateOrUpdateAndWait(RG, 'pe-bad', { location: LOC, subnet: { id: peSubnet }, privateLinkServiceConnections: [{ name: 'x', privateLinkServiceId: accountId, groupIds: ['sql'] }] }, poll),
    (e: { statusCode?: number }) => e.statusCode === 400);
  await assert.rejects(network.subnets.beginDeleteAndWait(RG, 'vnet-workers', 'pe', poll), (e: { statusCode?: number; code?: string }) => e.code === 'InUseSubnetCannotBeDeleted');
  // deleting the endpoint removes its zone group's A record
  await network.privateEndpoints.beginDeleteAndWait(RG, 'pe-queue', poll);
  await assert.rejects(dns.recordSets.get(RG, 'privatelink.queue.core.windows.net', 'A', 'cbworkersne01'), (e: { statusCode?: number }) => e.statusCode === 404);
});
