// The ARM side of worker VMs (controller/workers/azure-infra.ts) against the ARM simulator, through
// the real @azure/arm-* clients: network, regional storage (data plane = the run's Azurite),
// private endpoints and DNS, VMs whose managed Run Commands really run, deletion and the tag list.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { isCode } from '../../shared/errors.ts';
import type { AzureSettings } from '../../controller/azure/settings.ts';
import {
  CONTROLLER_TAG, createWorkerVm, deleteWorkerVm, ensurePrivateEndpoints, ensureRegionalStorage, ensureResourceGroup,
  ensureWorkerNetwork, infraClients, listTaggedVms, runScript, runScriptOutput, storageAccountName,
  type InfraClients, type Placement, type RegionalStorage, type WorkerNetwork,
} from '../../controller/workers/azure-infra.ts';
import { useAzurite } from '../support/azurite.ts';
import { startArmSimulator, simCredential, type ArmSimulator } from '../support/arm-simulator/index.ts';

const T = '0b6c7a3e-1111-4c4c-9a9a-0000000000b1';
const S = '5d1f0c2a-2222-4d4d-8b8b-0000000000b1';
const C = '7e2d1b4f-3333-4e4e-8c8c-0000000000b1';
const CTL = 'ctl-infra-1';
const p: Placement = { subscriptionId: S, resourceGroup: 'rg-cb-workers', region: 'westeurope', controllerId: CTL };
const UAMI = `/subscriptions/${S}/resourceGroups/rg-identities/providers/Microsoft.ManagedIdentity/userAssignedIdentities/cb-worker`;
let sim: ArmSimulator;
let c: InfraClients;
let net: WorkerNetwork;
let storage: RegionalStorage;

const puts = (pathEnd: string) => sim.armRequests({ method: 'PUT' }).filter((r) => r.path.toLowerCase().endsWith(pathEnd.toLowerCase())).length;
const rejectsWith = (code: string, pattern: RegExp) => (e: unknown) => {
  assert.ok(isCode(e, code as 'NOT_FOUND'), `expected ${code}, got ${String(e)}`);
  assert.match((e as Error).message, pattern);
  assert.ok(!(e as Error).message.includes('\n'), 'one line');
  return true;
};
const is404 = (e: { statusCode?: number }) => e.statusCode === 404;

before(async () => {
  const azurite = await useAzurite();
  sim = await startArmSimulator({ azurite: { blobEndpoint: azurite.blobEndpoint, queueEndpoint: azurite.queueEndpoint, accountKey: azurite.accountKey } });
  sim.setLroPolls(1);
  sim.addSubscription(S, 'prod', T);
  sim.addPrincipal({ tenantId: T, clientId: C, secret: 'secret-b1' });
  sim.state.ensureResourceGroup(S, 'rg-customer', 'westeurope', { owner: 'network-team' });
  const settings: AzureSettings = { armEndpoint: sim.url, authorityHost: sim.url, caBundle: sim.caCert, pollIntervalMs: 5, maxRetries: 3, allowMigration: false };
  c = infraClients(simCredential(sim, T, C, 'secret-b1'), S, settings);
});
after(async () => { await sim.stop(); });

test('storageAccountName: deterministic, 24 lower-case letters and digits, different per controller, subscription and region', () => {
  const a = storageAccountName(CTL, S, 'westeurope');
  assert.match(a, /^cb[0-9a-f]{22}$/);
  assert.equal(a, `cb${createHash('sha256').update(`${CTL}|${S}|westeurope`).digest('hex').slice(0, 22)}`);
  assert.equal(storageAccountName(CTL, S, 'West Europe'), a, 'the display name of a region is the same region');
  assert.notEqual(storageAccountName('ctl-other', S, 'westeurope'), a);
  assert.notEqual(storageAccountName(CTL, S, 'northeurope'), a);
  assert.notEqual(storageAccountName(CTL, '00000000-0000-0000-0000-000000000000', 'westeurope'), a);
});

test('ensureResourceGroup creates the group with region and controller tag, and leaves an existing one alone', async () => {
  await ensureResourceGroup(c, p);
  const rg = await c.resources.resourceGroups.get(p.resourceGroup);
  assert.equal(rg.location, 'westeurope');
  assert.deepEqual(rg.tags, { [CONTROLLER_TAG]: CTL });
  const before = puts(`/resourceGroups/${p.resourceGroup}`);
  await ensureResourceGroup(c, p);
  assert.equal(puts(`/resourceGroups/${p.resourceGroup}`), before, 'no second PUT');
  await ensureResourceGroup(c, { ...p, resourceGroup: 'rg-customer' });
  assert.deepEqual((await c.resources.resourceGroups.get('rg-customer')).tags, { owner: 'network-team' }, 'the owner\'s tags are kept');
  assert.equal(puts('/resourceGroups/rg-customer'), 0);
});

test('automatic network: vnet, subnets and NSG created and tagged, then reused; a missing subnet is added without a PUT of the vnet', async () => {
  net = await ensureWorkerNetwork(c, p);
  const vnetId = `/subscriptions/${S}/resourceGroups/${p.resourceGroup}/providers/Microsoft.Network/virtualNetworks/cb-workers-westeurope`;
  const nsgId = `/subscriptions/${S}/resourceGroups/${p.resourceGroup}/providers/Microsoft.Network/networkSecurityGroups/cb-workers-westeurope-nsg`;
  assert.deepEqual(net, { vnetId, subnetId: `${vnetId}/subnets/workers`, endpointSubnetId: `${vnetId}/subnets/endpoints`, nsgId, created: [nsgId, vnetId] });
  const vnet = await c.network.virtualNetworks.get(p.resourceGroup, 'cb-workers-westeurope');
  assert.deepEqual(vnet.addressSpace?.addressPrefixes, ['10.77.0.0/16']);
  assert.equal(vnet.tags?.[CONTROLLER_TAG], CTL);
  const workers = vnet.subnets!.find((s) => s.name === 'workers')!;
  const endpoints = vnet.subnets!.find((s) => s.name === 'endpoints')!;
  assert.equal(workers.addressPrefix, '10.77.1.0/24');
  assert.equal(workers.networkSecurityGroup?.id, nsgId);
  assert.equal(endpoints.addressPrefix, '10.77.2.0/24');
  assert.equal(endpoints.privateEndpointNetworkPolicies, 'Disabled');
  const nsg = await c.network.networkSecurityGroups.get(p.resourceGroup, 'cb-workers-westeurope-nsg');
  assert.equal(nsg.tags?.[CONTROLLER_TAG], CTL);
  const deny = nsg.securityRules!.find((r) => r.direction === 'Inbound' && r.access === 'Deny');
  assert.ok(deny, 'an inbound deny rule');
  assert.equal(deny.sourceAddressPrefix, 'Internet');
  assert.equal(deny.destinationPortRange, '*');
  assert.equal(deny.protocol, '*');

  const again = await ensureWorkerNetwork(c, p);
  assert.deepEqual(again, { ...net, created: [] });
  assert.equal(puts('/virtualNetworks/cb-workers-westeurope'), 1, 'the vnet was PUT once');
  assert.equal(puts('/networkSecurityGroups/cb-workers-westeurope-nsg'), 1);

  // someone deleted the endpoints subnet: it comes back on its own, the vnet is not rewritten
  await c.network.subnets.beginDeleteAndWait(p.resourceGroup, 'cb-workers-westeurope', 'endpoints', c.pollOptions);
  const repaired = await ensureWorkerNetwork(c, p);
  assert.deepEqual(repaired.created, [`${vnetId}/subnets/endpoints`]);
  assert.equal(puts('/virtualNetworks/cb-workers-westeurope'), 1);
  assert.equal((await c.network.subnets.get(p.resourceGroup, 'cb-workers-westeurope', 'endpoints')).privateEndpointNetworkPolicies, 'Disabled');
});

test('given network: ids or names are verified and used for workers and endpoints; missing or misplaced ones are refused', async () => {
  const rg = 'rg-customer';
  const poll = c.pollOptions;
  const nsg = await c.network.networkSecurityGroups.beginCreateOrUpdateAndWait(rg, 'nsg-customer', { location: 'westeurope' }, poll);
  const vnet = await c.network.virtualNetworks.beginCreateOrUpdateAndWait(rg, 'vnet-customer', {
    location: 'westeurope', addressSpace: { addressPrefixes: ['10.50.0.0/16'] }, subnets: [{ name: 'apps', addressPrefix: '10.50.1.0/24' }],
  }, poll);
  await c.network.virtualNetworks.beginCreateOrUpdateAndWait(rg, 'vnet-far', {
    location: 'eastus', addressSpace: { addressPrefixes: ['10.60.0.0/16'] }, subnets: [{ name: 'apps', addressPrefix: '10.60.1.0/24' }],
  }, poll);
  const subnetId = `${vnet.id}/subnets/apps`;
  const putsBefore = sim.armRequests({ method: 'PUT' }).length;

  const byIds = await ensureWorkerNetwork(c, p, { virtualNetwork: vnet.id, subnet: subnetId, networkSecurityGroup: nsg.id });
  assert.deepEqual(byIds, { vnetId: vnet.id, subnetId, endpointSubnetId: subnetId, nsgId: nsg.id, created: [] });
  const bySubnetId = await ensureWorkerNetwork(c, p, { subnet: subnetId });
  assert.deepEqual(bySubnetId, { ...byIds, nsgId: null });
  const byNames = await ensureWorkerNetwork(c, { ...p, resourceGroup: rg }, { virtualNetwork: 'vnet-customer', subnet: 'apps', networkSecurityGroup: 'nsg-customer' });
  assert.deepEqual(byNames, byIds);
  assert.equal(sim.armRequests({ method: 'PUT' }).length, putsBefore, 'nothing is created or changed in a given network');

  await assert.rejects(ensureWorkerNetwork(c, p, { virtualNetwork: vnet.id, subnet: `${vnet.id}/subnets/nope` }), rejectsWith('NOT_FOUND', /subnet nope of virtual network vnet-customer \(resource group rg-customer\): not found/));
  await assert.rejects(ensureWorkerNetwork(c, { ...p, resourceGroup: rg }, { virtualNetwork: 'vnet-missing', subnet: 'apps' }), rejectsWith('NOT_FOUND', /virtual network vnet-missing .*not found/));
  await assert.rejects(ensureWorkerNetwork(c, p, { subnet: subnetId, networkSecurityGroup: `${nsg.id}-gone` }), rejectsWith('NOT_FOUND', /network security group nsg-customer-gone/));
  await assert.rejects(ensureWorkerNetwork(c, p, { subnet: 'apps' }), rejectsWith('INVALID_ARGUMENT', /without its virtual network/));
  await assert.rejects(ensureWorkerNetwork(c, p, { virtualNetwork: vnet.id }), rejectsWith('INVALID_ARGUMENT', /without the subnet/));
  await assert.rejects(ensureWorkerNetwork(c, { ...p, resourceGroup: rg }, { virtualNetwork: 'vnet-far', subnet: 'apps' }), rejectsWith('INVALID_ARGUMENT', /vnet-far .*is in eastus/));
  await assert.rejects(ensureWorkerNetwork(c, p, { virtualNetwork: 'vnet-customer', subnet: subnetId.replace('vnet-customer', 'vnet-far') }), rejectsWith('INVALID_ARGUMENT', /is not in virtual network/));
  await assert.rejects(ensureWorkerNetwork(c, p, { subnet: subnetId.replace(S, '11111111-1111-1111-1111-111111111111') }), rejectsWith('INVALID_ARGUMENT', /not in subscription/));
});

test('regional storage: created with the controller tag and safe settings, found again by tag, and its key works against the data plane', async () => {
  storage = await ensureRegionalStorage(c, p, { privateNetwork: true });
  const name = storageAccountName(CTL, S, 'westeurope', true);
  assert.notEqual(name, storageAccountName(CTL, S, 'westeurope'), 'the private account is another account');
  assert.equal(storage.name, name);
  assert.equal(storage.created, true);
  assert.equal(storage.id, `/subscriptions/${S}/resourceGroups/${p.resourceGroup}/providers/Microsoft.Storage/storageAccounts/${name}`);
  const a = await c.storage.storageAccounts.getProperties(p.resourceGroup, name);
  assert.equal(a.tags?.[CONTROLLER_TAG], CTL);
  assert.equal(a.kind, 'StorageV2');
  assert.equal(a.sku?.name, 'Standard_LRS');
  assert.equal(a.minimumTlsVersion, 'TLS1_2');
  assert.equal(a.allowBlobPublicAccess, false);
  assert.equal(a.publicNetworkAccess, 'Disabled');
  assert.ok(!storage.blobEndpoint.endsWith('/') && !storage.queueEndpoint.endsWith('/'));
  assert.equal(storage.blobEndpoint, a.primaryEndpoints!.blob!.replace(/\/$/, ''));
  assert.equal(storage.sharedKeyAccountName, 'devstoreaccount1', 'Azurite\'s path-style account, not the ARM name');

  // found again by its tag, even from a placement in another resource group
  const again = await ensureRegionalStorage(c, { ...p, resourceGroup: 'rg-customer' }, { privateNetwork: true });
  assert.deepEqual(again, { ...storage, created: false });
  assert.equal(puts(`/storageAccounts/${name}`), 1, 'created once');

  // a public deployment in the same region does not reuse the private account (its workers could
  // not reach it), and a private one never an account the internet reaches
  const open = await ensureRegionalStorage(c, p, { privateNetwork: false });
  assert.equal(open.created, true);
  assert.equal(open.name, storageAccountName(CTL, S, 'westeurope'));
  assert.equal((await c.storage.storageAccounts.getProperties(p.resourceGroup, open.name)).publicNetworkAccess, 'Enabled');
  assert.deepEqual(await ensureRegionalStorage(c, p, { privateNetwork: true }), { ...storage, created: false });
  assert.deepEqual(await ensureRegionalStorage(c, p, { privateNetwork: false }), { ...open, created: false });

  // the lookup is by tag and region: an account tagged by hand in eastus is the eastus account
  await c.storage.storageAccounts.create('rg-customer', 'cbhandmadeeastus', { location: 'eastus', kind: 'StorageV2', sku: { name: 'Standard_LRS' }, tags: { [CONTROLLER_TAG]: CTL } }, c.pollOptions);
  const east = await ensureRegionalStorage(c, { ...p, region: 'East US' }, { privateNetwork: false });
  assert.equal(east.name, 'cbhandmadeeastus');
  assert.equal(east.created, false);
  // another controller's tag does not count
  const other = await ensureRegionalStorage(c, { ...p, controllerId: 'ctl-other' }, { privateNetwork: false });
  assert.equal(other.created, true);
  assert.equal(other.name, storageAccountName('ctl-other', S, 'westeurope'));
  assert.equal((await c.storage.storageAccounts.getProperties(p.resourceGroup, other.name)).publicNetworkAccess, 'Enabled');

  // the key from listKeys, with the shared-key account name, reaches the blob service
  const blobs = new BlobServiceClient(storage.blobEndpoint, new StorageSharedKeyCredential(storage.sharedKeyAccountName, storage.accountKey));
  const container = blobs.getContainerClient(`infra-${Date.now()}`);
  await container.create();
  await container.getBlockBlobClient('probe.txt').upload('worker-data', 11);
  assert.equal((await container.getBlockBlobClient('probe.txt').downloadToBuffer()).toString(), 'worker-data');
  await container.delete();
});

test('private endpoints: blob and queue endpoints, zones, vnet links and zone groups with A records; a second call creates nothing', async () => {
  const rg = p.resourceGroup;
  const created = await ensurePrivateEndpoints(c, p, storage, net);
  const pe = (g: string) => `/subscriptions/${S}/resourceGroups/${rg}/providers/Microsoft.Network/privateEndpoints/cb-pe-${storage.name}-${g}`;
  const zone = (g: string) => `/subscriptions/${S}/resourceGroups/${rg}/providers/Microsoft.Network/privateDnsZones/privatelink.${g}.core.windows.net`;
  assert.equal(created.length, 8);
  for (const g of ['blob', 'queue']) {
    assert.ok(created.includes(pe(g)), `endpoint ${g} created`);
    assert.ok(created.includes(zone(g)), `zone ${g} created`);
    assert.ok(created.includes(`${pe(g)}/privateDnsZoneGroups/default`), `zone group ${g} created`);
    assert.ok(created.some((id) => id.startsWith(`${zone(g)}/virtualNetworkLinks/`)), `link ${g} created`);

    const e = await c.network.privateEndpoints.get(rg, `cb-pe-${storage.name}-${g}`);
    assert.equal(e.subnet?.id, net.endpointSubnetId);
    assert.equal(e.privateLinkServiceConnections![0]!.privateLinkServiceId, storage.id);
    assert.deepEqual(e.privateLinkServiceConnections![0]!.groupIds, [g]);
    assert.equal(e.tags?.[CONTROLLER_TAG], CTL);
    const z = await c.dns.privateZones.get(rg, `privatelink.${g}.core.windows.net`);
    assert.equal(z.location, 'global');
    const links = [];
    for await (const l of c.dns.virtualNetworkLinks.list(rg, `privatelink.${g}.core.windows.net`)) links.push(l);
    assert.equal(links.length, 1);
    assert.equal(links[0]!.virtualNetwork?.id, net.vnetId);
    assert.equal(links[0]!.registrationEnabled, false);
    const zg = await c.network.privateDnsZoneGroups.get(rg, `cb-pe-${storage.name}-${g}`, 'default');
    assert.equal(zg.privateDnsZoneConfigs![0]!.privateDnsZoneId, z.id);
    const a = await c.dns.recordSets.get(rg, `privatelink.${g}.core.windows.net`, 'A', storage.name);
    assert.deepEqual(a.aRecords!.map((r) => r.ipv4Address), e.customDnsConfigs![0]!.ipAddresses);
    assert.match(a.aRecords![0]!.ipv4Address!, /^10\.77\.2\.\d+$/, 'an address of the endpoints subnet');
  }
  const putCount = () => sim.armRequests({ method: 'PUT' }).filter((r) => /privateEndpoints|privateDnsZones/i.test(r.path)).length;
  const before = putCount();
  assert.equal(before, 8);
  assert.deepEqual(await ensurePrivateEndpoints(c, p, storage, net), []);
  assert.equal(putCount(), before, 'no PUT on the second call');
  // a zone group that went missing is the only thing made again
  await c.network.privateDnsZoneGroups.beginDeleteAndWait(rg, `cb-pe-${storage.name}-queue`, 'default', c.pollOptions);
  assert.deepEqual(await ensurePrivateEndpoints(c, p, storage, net), [`${pe('queue')}/privateDnsZoneGroups/default`]);
});

/** The OpenSSH public key's parts: type and RSA modulus bits. */
function parseSshRsa(key: string): { type: string; bits: number } {
  const [type, b64] = key.split(' ');
  const buf = Buffer.from(b64!, 'base64');
  const fields: Buffer[] = [];
  for (let o = 0; o < buf.length;) { const n = buf.readUInt32BE(o); fields.push(buf.subarray(o + 4, o + 4 + n)); o += 4 + n; }
  assert.equal(fields.length, 3);
  assert.equal(fields[0]!.toString(), type);
  const n = fields[2]!;
  return { type: type!, bits: (n[0] === 0 ? n.length - 1 : n.length) * 8 };
}

test('worker VM: Ubuntu 22.04 Gen2, private NIC only, throwaway SSH key, identity and tags; Run Command results with protected parameters', async () => {
  const tags = { [CONTROLLER_TAG]: CTL, 'cosmos-backup-job': 'job-1' };
  const r = await createWorkerVm(c, p, { name: 'cbw-job-1', vmSize: 'Standard_D2s_v5', subnetId: net.subnetId, userAssignedIdentityId: UAMI, tags });
  assert.equal(r.vmId, `/subscriptions/${S}/resourceGroups/${p.resourceGroup}/providers/Microsoft.Compute/virtualMachines/cbw-job-1`);
  assert.equal(r.nicId, `/subscriptions/${S}/resourceGroups/${p.resourceGroup}/providers/Microsoft.Network/networkInterfaces/cbw-job-1-nic`);
  assert.equal(r.osDiskName, 'cbw-job-1-osdisk');
  const vm = await c.compute.virtualMachines.get(p.resourceGroup, 'cbw-job-1', { expand: 'instanceView' });
  const image = vm.storageProfile?.imageReference;
  assert.deepEqual([image?.publisher, image?.offer, image?.sku, image?.version], ['Canonical', '0001-com-ubuntu-server-jammy', '22_04-lts-gen2', 'latest']);
  assert.equal(vm.storageProfile?.osDisk?.managedDisk?.storageAccountType, 'StandardSSD_LRS');
  assert.equal(vm.storageProfile?.osDisk?.deleteOption, 'Delete');
  assert.equal(vm.networkProfile?.networkInterfaces?.[0]?.deleteOption, 'Delete');
  assert.equal(vm.hardwareProfile?.vmSize, 'Standard_D2s_v5');
  assert.deepEqual(vm.tags, tags);
  assert.equal(vm.osProfile?.adminUsername, 'cbadmin');
  assert.equal(vm.osProfile?.linuxConfiguration?.disablePasswordAuthentication, true);
  const key = vm.osProfile!.linuxConfiguration!.ssh!.publicKeys![0]!;
  assert.equal(key.path, '/home/cbadmin/.ssh/authorized_keys');
  assert.deepEqual(parseSshRsa(key.keyData!), { type: 'ssh-rsa', bits: 2048 });
  assert.deepEqual(Object.keys(vm.identity?.userAssignedIdentities ?? {}), [UAMI]);
  assert.equal(vm.instanceView?.statuses?.find((s) => s.code?.startsWith('PowerState/'))?.code, 'PowerState/running');
  const put = sim.armRequests({ method: 'PUT', pathIncludes: '/virtualMachines/cbw-job-1' }).at(-1)!;
  assert.equal(put.body.properties.osProfile.adminPassword, undefined, 'no password is ever sent');
  const nic = await c.network.networkInterfaces.get(p.resourceGroup, 'cbw-job-1-nic');
  assert.equal(nic.ipConfigurations!.length, 1);
  assert.equal(nic.ipConfigurations![0]!.publicIPAddress, undefined, 'no public IP');
  assert.equal(nic.ipConfigurations![0]!.subnet?.id, net.subnetId);
  assert.match(nic.ipConfigurations![0]!.privateIPAddress!, /^10\.77\.1\.\d+$/);
  assert.deepEqual(nic.tags, tags);
  const nicPut = sim.armRequests({ method: 'PUT', pathIncludes: '/networkInterfaces/cbw-job-1-nic' }).at(-1)!;
  assert.ok(!JSON.stringify(nicPut.body).includes('publicIPAddress'));
  // another key next time: the private half is never kept
  const r2 = await createWorkerVm(c, p, { name: 'cbw-job-2', vmSize: 'Standard_D2s_v5', subnetId: net.subnetId, tags });
  const key2 = (await c.compute.virtualMachines.get(p.resourceGroup, 'cbw-job-2')).osProfile!.linuxConfiguration!.ssh!.publicKeys![0]!.keyData;
  assert.notEqual(key2, key.keyData);
  assert.equal(r2.osDiskName, 'cbw-job-2-osdisk');

  const secret = 'w0rker-s3cret-value';
  const ok = await runScript(c, p, 'cbw-job-1', {
    name: 'start-worker', timeoutSeconds: 120,
    script: 'echo "queue=$QUEUE"\nprintf %s "$WORKER_SECRET" | sha256sum | cut -c1-16\necho "user=$USER"',
    parameters: { QUEUE: 'jobs-1' }, protectedParameters: { WORKER_SECRET: secret },
  });
  assert.deepEqual(ok, {
    exitCode: 0, executionState: 'Succeeded', error: '',
    output: `queue=jobs-1\n${createHash('sha256').update(secret).digest('hex').slice(0, 16)}\nuser=root\n`,
  });
  const history = sim.runCommandHistory('cbw-job-1');
  const run = history.find((h) => h.name === 'start-worker')!;
  assert.deepEqual(run.parameters, [{ name: 'QUEUE', value: 'jobs-1' }]);
  assert.deepEqual(run.protectedParameterNames, ['WORKER_SECRET']);
  assert.ok(!JSON.stringify(history).includes(secret), 'the protected value is not kept');
  const rcPut = sim.armRequests({ method: 'PUT', pathIncludes: '/runCommands/start-worker' }).at(-1)!;
  assert.equal(rcPut.body.properties.asyncExecution, false);
  assert.equal(rcPut.body.properties.timeoutInSeconds, 120);

  const failed = await runScript(c, p, 'cbw-job-1', { name: 'probe', script: 'echo partial\necho "no agent here" >&2\nexit 3' });
  assert.deepEqual(failed, { exitCode: 3, executionState: 'Failed', output: 'partial\n', error: 'no agent here\n' });
  assert.deepEqual(await runScriptOutput(c, p, 'cbw-job-1', 'probe'), failed);
  assert.deepEqual(await runScriptOutput(c, p, 'cbw-job-1', 'start-worker'), ok);
  assert.equal(await runScriptOutput(c, p, 'cbw-job-1', 'never-ran'), null);
  assert.equal(await runScriptOutput(c, p, 'cbw-no-such-vm', 'probe'), null);

  // a script still running has no exit code yet
  await c.compute.virtualMachineRunCommands.createOrUpdate(p.resourceGroup, 'cbw-job-1', 'slow', { location: 'westeurope', source: { script: 'sleep 30' }, asyncExecution: true }, c.pollOptions);
  assert.deepEqual(await runScriptOutput(c, p, 'cbw-job-1', 'slow'), { exitCode: null, executionState: 'Running', output: '', error: '' });
  await c.compute.virtualMachineRunCommands.delete(p.resourceGroup, 'cbw-job-1', 'slow', c.pollOptions);

  // Azure's refusals become one line naming the resource
  await assert.rejects(runScript(c, p, 'cbw-no-such-vm', { name: 'x', script: 'true' }), rejectsWith('NOT_FOUND', /run command x on virtual machine cbw-no-such-vm/));
  await assert.rejects(createWorkerVm(c, p, { name: 'cbw-bad', vmSize: 'Standard_D2s_v5', subnetId: `${net.vnetId}/subnets/missing`, tags }),
    rejectsWith('INVALID_ARGUMENT', /network interface cbw-bad-nic \(rg-cb-workers\): creating: Azure refused/));
});

test('listTaggedVms lists this controller\'s VMs only; deleteWorkerVm removes VM, NIC and disk, also when they would survive the VM', async () => {
  // another controller's VM and an untagged one, plus one whose NIC and disk are kept by Azure on delete
  await createWorkerVm(c, p, { name: 'cbw-other', vmSize: 'Standard_D2s_v5', subnetId: net.subnetId, tags: { [CONTROLLER_TAG]: 'ctl-other' } });
  await createWorkerVm(c, p, { name: 'cbw-untagged', vmSize: 'Standard_D2s_v5', subnetId: net.subnetId, tags: {} });
  const nic = await c.network.networkInterfaces.beginCreateOrUpdateAndWait(p.resourceGroup, 'kept-nic', {
    location: 'westeurope', ipConfigurations: [{ name: 'ipconfig1', subnet: { id: net.subnetId } }],
  }, c.pollOptions);
  await c.compute.virtualMachines.createOrUpdate(p.resourceGroup, 'cbw-detach', {
    location: 'westeurope', tags: { [CONTROLLER_TAG]: CTL }, hardwareProfile: { vmSize: 'Standard_D2s_v5' },
    storageProfile: { imageReference: { publisher: 'Canonical', offer: '0001-com-ubuntu-server-jammy', sku: '22_04-lts-gen2', version: 'latest' }, osDisk: { name: 'kept-disk', createOption: 'FromImage', deleteOption: 'Detach' } },
    networkProfile: { networkInterfaces: [{ id: nic.id!, deleteOption: 'Detach' }] },
  }, c.pollOptions);

  const mine = await listTaggedVms(c, CTL);
  assert.deepEqual(mine.map((v) => v.name).sort(), ['cbw-detach', 'cbw-job-1', 'cbw-job-2']);
  const one = mine.find((v) => v.name === 'cbw-job-1')!;
  assert.deepEqual(one, {
    name: 'cbw-job-1', resourceGroup: p.resourceGroup, region: 'westeurope', tags: { [CONTROLLER_TAG]: CTL, 'cosmos-backup-job': 'job-1' },
    id: `/subscriptions/${S}/resourceGroups/${p.resourceGroup}/providers/Microsoft.Compute/virtualMachines/cbw-job-1`,
  });
  assert.deepEqual((await listTaggedVms(c, 'ctl-other')).map((v) => v.name), ['cbw-other']);

  await deleteWorkerVm(c, p, 'cbw-job-1');
  await assert.rejects(c.compute.virtualMachines.get(p.resourceGroup, 'cbw-job-1'), is404);
  await assert.rejects(c.network.networkInterfaces.get(p.resourceGroup, 'cbw-job-1-nic'), is404);
  await assert.rejects(c.compute.disks.get(p.resourceGroup, 'cbw-job-1-osdisk'), is404);
  assert.ok(sim.armRequests({ method: 'DELETE', pathIncludes: '/virtualMachines/cbw-job-1' }).length >= 1);

  await deleteWorkerVm(c, p, 'cbw-detach');
  await assert.rejects(c.compute.virtualMachines.get(p.resourceGroup, 'cbw-detach'), is404);
  await assert.rejects(c.network.networkInterfaces.get(p.resourceGroup, 'kept-nic'), is404);
  await assert.rejects(c.compute.disks.get(p.resourceGroup, 'kept-disk'), is404);

  // idempotent: a VM that is gone, or never was, is fine
  await deleteWorkerVm(c, p, 'cbw-job-1');
  await deleteWorkerVm(c, p, 'cbw-never-existed');
  assert.deepEqual((await listTaggedVms(c, CTL)).map((v) => v.name), ['cbw-job-2']);
  // the other VMs are untouched
  assert.equal((await c.compute.virtualMachines.get(p.resourceGroup, 'cbw-other')).provisioningState, 'Succeeded');
  assert.equal((await c.compute.virtualMachines.get(p.resourceGroup, 'cbw-untagged')).provisioningState, 'Succeeded');
});
