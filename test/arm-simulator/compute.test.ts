// The ARM simulator's virtual machines, spoken to by the real @azure/arm-compute and
// @azure/arm-network clients: Run Command scripts really run in a sandbox with a fresh VM's
// environment, with Azure's limits, and the VM's processes live and die as on a VM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ComputeManagementClient, type VirtualMachine } from '@azure/arm-compute';
import { NetworkManagementClient } from '@azure/arm-network';
import { startArmSimulator, simClientOptions, simCredential, type ArmSimulator } from '../support/arm-simulator/index.ts';

const T = '0b6c7a3e-1111-4c4c-9a9a-000000000009';
const S = '5d1f0c2a-2222-4d4d-8b8b-000000000009';
const C = '7e2d1b4f-3333-4e4e-8c8c-000000000009';
const RG = 'rg-workers';
const LOC = 'westeurope';
const poll = { updateIntervalInMs: 5 };
let sim: ArmSimulator;
let compute: ComputeManagementClient;
let network: NetworkManagementClient;
let nicSeq = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function makeNic(): Promise<string> {
  const nic = await network.networkInterfaces.beginCreateOrUpdateAndWait(RG, `nic-${++nicSeq}`, {
    location: LOC, networkSecurityGroup: { id: nsgId() },
    ipConfigurations: [{ name: 'ipconfig1', subnet: { id: subnetId() }, privateIPAllocationMethod: 'Dynamic' }],
  }, poll);
  return nic.id!;
}
const nsgId = () => `/subscriptions/${S}/resourceGroups/${RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-workers`;
const subnetId = () => `/subscriptions/${S}/resourceGroups/${RG}/providers/Microsoft.Network/virtualNetworks/vnet-workers/subnets/workers`;

async function makeVm(name: string, nicDelete: 'Delete' | 'Detach' = 'Delete'): Promise<VirtualMachine> {
  const nicId = await makeNic();
  return compute.virtualMachines.createOrUpdate(RG, name, {
    location: LOC, tags: { 'cosmos-backup': 'ctl-1' },
    identity: { type: 'UserAssigned', userAssignedIdentities: { [`/subscriptions/${S}/resourceGroups/${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker-id`]: {} } },
    hardwareProfile: { vmSize: 'Standard_D2s_v5' },
    storageProfile: {
      imageReference: { publisher: 'Canonical', offer: '0001-com-ubuntu-server-jammy', sku: '22_04-lts-gen2', version: 'latest' },
      osDisk: { createOption: 'FromImage', managedDisk: { storageAccountType: 'StandardSSD_LRS' }, deleteOption: 'Delete' },
    },
    osProfile: { computerName: name, adminUsername: 'azureuser', linuxConfiguration: { disablePasswordAuthentication: true } },
    networkProfile: { networkInterfaces: [{ id: nicId, primary: true, deleteOption: nicDelete }] },
  }, poll);
}

const run = (vm: string, script: string[], parameters: { name: string; value: string }[] = []) =>
  compute.virtualMachines.runCommand(RG, vm, { commandId: 'RunShellScript', script, parameters }, poll);
const power = (v: VirtualMachine) => v.instanceView?.statuses?.find((s) => s.code?.startsWith('PowerState/'))?.code;

before(async () => {
  sim = await startArmSimulator();
  sim.setLroPolls(1);
  sim.addSubscription(S, 'prod', T);
  sim.addPrincipal({ tenantId: T, clientId: C, secret: 'secret-9' });
  sim.state.ensureResourceGroup(S, RG, LOC);
  const cred = simCredential(sim, T, C, 'secret-9');
  compute = new ComputeManagementClient(cred, S, simClientOptions(sim));
  network = new NetworkManagementClient(cred, S, simClientOptions(sim));
  await network.networkSecurityGroups.beginCreateOrUpdateAndWait(RG, 'nsg-workers', {
    location: LOC, securityRules: [{ name: 'deny-inbound', priority: 4000, direction: 'Inbound', access: 'Deny', protocol: '*', sourceAddressPrefix: '*', sourcePortRange: '*', destinationAddressPrefix: '*', destinationPortRange: '*' }],
  }, poll);
  await network.virtualNetworks.beginCreateOrUpdateAndWait(RG, 'vnet-workers', {
    location: LOC, addressSpace: { addressPrefixes: ['10.20.0.0/16'] },
    subnets: [{ name: 'workers', addressPrefix: '10.20.1.0/24', networkSecurityGroup: { id: nsgId() } }, { name: 'pe', addressPrefix: '10.20.2.0/24', privateEndpointNetworkPolicies: 'Disabled' }],
  }, poll);
});
after(async () => { await sim.stop(); });

test('NSG, VNet/subnet, NIC and VM through the real clients: LRO create, instanceView power state, list, disk', async () => {
  const vm = await makeVm('vm-basic');
  assert.equal(vm.provisioningState, 'Succeeded');
  assert.equal(vm.storageProfile?.imageReference?.sku, '22_04-lts-gen2');
  assert.equal(vm.tags?.['cosmos-backup'], 'ctl-1');
  const uami = Object.values(vm.identity?.userAssignedIdentities ?? {})[0];
  assert.ok(uami?.clientId && uami.principalId);
  const creates = sim.armRequests({ method: 'PUT', pathIncludes: '/virtualMachines/vm-basic' });
  assert.equal(creates.at(-1)!.status, 201);
  assert.ok(sim.armRequests({ method: 'GET', pathIncludes: '/Microsoft.Compute/locations/' }).length >= 1, 'the create was polled');
  assert.equal(power(await compute.virtualMachines.get(RG, 'vm-basic', { expand: 'instanceView' })), 'PowerState/running');
  const iv = await compute.virtualMachines.instanceView(RG, 'vm-basic');
  assert.equal(iv.statuses?.find((s) => s.code?.startsWith('PowerState/'))?.code, 'PowerState/running');
  const names = [];
  for await (const v of compute.virtualMachines.list(RG)) names.push(v.name);
  assert.ok(names.includes('vm-basic'));
  const nic = await network.networkInterfaces.get(RG, vm.networkProfile!.networkInterfaces![0]!.id!.split('/').pop()!);
  assert.equal(nic.virtualMachine?.id, vm.id);
  assert.match(nic.ipConfigurations![0]!.privateIPAddress!, /^10\.20\.1\.\d+$/);
  const subnet = await network.subnets.get(RG, 'vnet-workers', 'workers');
  assert.ok(subnet.ipConfigurations!.some((c) => c.id!.startsWith(nic.id!)));
  // a NIC that a VM uses cannot be deleted
  await assert.rejects(network.networkInterfaces.beginDeleteAndWait(RG, nic.name!, poll), (e: { statusCode?: number; code?: string }) => e.statusCode === 400 && e.code === 'NicInUse');
  // a NIC that does not exist is refused at create
  await assert.rejects(compute.virtualMachines.createOrUpdate(RG, 'vm-nonic', { location: LOC, hardwareProfile: vm.hardwareProfile, storageProfile: { imageReference: vm.storageProfile!.imageReference }, networkProfile: { networkInterfaces: [{ id: `${nic.id}-missing` }] } }, poll),
    (e: { statusCode?: number }) => e.statusCode === 400);
});

test('Run Command really runs bash in the sandbox; output is the last 4,096 bytes in value[0], stderr in value[1]', async () => {
  await makeVm('vm-run');
  const r = await run('vm-run', [
    'echo "hello from $(hostname -s >/dev/null; pwd)" > made-here.txt',
    'echo to-stderr >&2',
    'head -c 10240 /dev/zero | tr "\\0" "x"',
    'printf "\\nEND:%s" "$GREETING"',
  ], [{ name: 'GREETING', value: 'hi' }]);
  const [out, err] = r.value!;
  assert.equal(out!.code, 'ComponentStatus/StdOut/succeeded');
  assert.equal(err!.code, 'ComponentStatus/StdErr/succeeded');
  assert.equal(Buffer.byteLength(out!.message!), 4096);
  assert.ok(out!.message!.endsWith('\nEND:hi'));
  assert.equal(err!.message, 'to-stderr\n');
  const sandbox = sim.vmSandbox('vm-run');
  assert.equal(readFileSync(path.join(sandbox, 'made-here.txt'), 'utf8'), `hello from ${sandbox}\n`);
});

test('a fresh VM\'s environment: Ubuntu PATH, HOME in the sandbox, no NODE/npm variables, and no node (127)', async () => {
  await makeVm('vm-env');
  const r = await run('vm-env', ['echo "PATH=$PATH"', 'echo "HOME=$HOME"', 'env | grep -ci -e "^node" -e "^npm" || true', 'echo "CWD=$(pwd)"', 'node -v; echo "node-exit=$?"', 'command -v curl']);
  const out = r.value![0]!.message!;
  const sandbox = sim.vmSandbox('vm-env');
  assert.match(out, new RegExp(`PATH=${sandbox}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\\n`));
  assert.ok(!out.includes(process.cwd()), 'nothing of the project is on PATH');
  assert.match(out, new RegExp(`HOME=${sandbox}/home\\n`));
  assert.match(out, /\n0\n/);
  assert.match(out, new RegExp(`CWD=${sandbox}\\n`));
  assert.match(out, /node-exit=127\n/);
  assert.match(out, /\/curl\n/, 'curl is there to fetch the agent by its SAS URL');
  assert.match(r.value![1]!.message!, /node: command not found/);
  // a script that fails on node fails as on a fresh VM
  const failed = await run('vm-env', ['set -e', 'node -e "console.log(1)"', 'echo unreachable']);
  assert.equal(failed.value![0]!.code, 'ComponentStatus/StdOut/failed');
  assert.equal(failed.value![0]!.message, '');
  assert.equal(sim.runCommandHistory('vm-env').at(-1)!.exitCode, 127);
});

test('one Run Command at a time: a second while the first runs is 409 Conflict', async () => {
  await makeVm('vm-busy');
  const first = run('vm-busy', ['sleep 0.6', 'echo first-done']);
  await until('the first script to start', () => sim.runCommandHistory('vm-busy').length === 1);
  await assert.rejects(run('vm-busy', ['echo second']), (e: { statusCode?: number; message: string }) => {
    assert.equal(e.statusCode, 409);
    assert.match(e.message, /Run command extension execution is in progress/);
    return true;
  });
  assert.equal((await first).value![0]!.message, 'first-done\n');
  assert.equal((await run('vm-busy', ['echo again'])).value![0]!.message, 'again\n');
});

test('a background process survives its Run Command; deallocate kills it, and a deallocated VM runs nothing', async () => {
  await makeVm('vm-bg');
  const r = await run('vm-bg', ['nohup sleep 300 > agent.log 2>&1 &', 'echo started']);
  assert.equal(r.value![0]!.message, 'started\n');
  await until('the background process to be listed', () => sim.vmProcesses('vm-bg').some((p) => p.command === 'sleep 300'));
  assert.equal(sim.runCommandHistory('vm-bg')[0]!.done, true, 'the command returned while its child runs on');
  await compute.virtualMachines.deallocate(RG, 'vm-bg', poll);
  await until('the VM\'s processes to die', () => sim.vmProcesses('vm-bg').length === 0);
  assert.equal(power(await compute.virtualMachines.get(RG, 'vm-bg', { expand: 'instanceView' })), 'PowerState/deallocated');
  await assert.rejects(run('vm-bg', ['echo no']), (e: { statusCode?: number }) => e.statusCode === 409);
});

test('crashVm kills the VM\'s processes without a deallocate; delete kills them and removes VM, NIC and disk', async () => {
  const vm = await makeVm('vm-crash');
  await run('vm-crash', ['nohup sleep 300 >/dev/null 2>&1 &']);
  await until('the background process', () => sim.vmProcesses('vm-crash').length === 1);
  sim.crashVm('vm-crash');
  await until('the crash', () => sim.vmProcesses('vm-crash').length === 0);
  assert.equal(power(await compute.virtualMachines.get(RG, 'vm-crash', { expand: 'instanceView' })), 'PowerState/running');
  await run('vm-crash', ['nohup sleep 300 >/dev/null 2>&1 &']);
  await until('the restarted process', () => sim.vmProcesses('vm-crash').length === 1);
  const pid = sim.vmProcesses('vm-crash')[0]!.pid;
  const sandbox = sim.vmSandbox('vm-crash');
  await compute.virtualMachines.delete(RG, 'vm-crash', poll);
  await until('the process to die', () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '));
  await assert.rejects(compute.virtualMachines.get(RG, 'vm-crash'), (e: { statusCode?: number }) => e.statusCode === 404);
  const nicName = vm.networkProfile!.networkInterfaces![0]!.id!.split('/').pop()!;
  await assert.rejects(network.networkInterfaces.get(RG, nicName), (e: { statusCode?: number }) => e.statusCode === 404);
  await assert.rejects(compute.disks.get(RG, vm.storageProfile!.osDisk!.name!), (e: { statusCode?: number }) => e.statusCode === 404);
  assert.ok(!existsSync(sandbox), 'the sandbox is gone with the VM');
});

test('managed run commands: protectedParameters are env vars but never in the instanceView; exit codes; the 25 limit', async () => {
  await makeVm('vm-managed');
  const rc = await compute.virtualMachineRunCommands.createOrUpdate(RG, 'vm-managed', 'start-agent', {
    location: LOC,
    source: { script: 'echo "key-length=${#WORKER_KEY}"\necho "queue=$QUEUE"\nprintf %s "$WORKER_KEY" | sha256sum | cut -c1-12' },
    parameters: [{ name: 'QUEUE', value: 'cmd-1' }], protectedParameters: [{ name: 'WORKER_KEY', value: 's3cr3t-worker-key' }],
    asyncExecution: false,
  }, poll);
  assert.equal(rc.provisioningState, 'Succeeded');
  const got = await compute.virtualMachineRunCommands.getByVirtualMachine(RG, 'vm-managed', 'start-agent', { expand: 'instanceView' });
  const iv = got.instanceView!;
  assert.equal(iv.executionState, 'Succeeded');
  assert.equal(iv.exitCode, 0);
  assert.equal(iv.output, `key-length=17\nqueue=cmd-1\n${createHash('sha256').update('s3cr3t-worker-key').digest('hex').slice(0, 12)}\n`);
  assert.equal(got.protectedParameters, undefined);
  const everything = JSON.stringify([got, sim.runCommandHistory('vm-managed'), sim.requests.filter((r) => r.method === 'GET').map((r) => r.path)]);
  assert.ok(!everything.includes('s3cr3t-worker-key'), 'the protected value is nowhere but in the script\'s environment');

  const failing = await compute.virtualMachineRunCommands.createOrUpdate(RG, 'vm-managed', 'needs-node', { location: LOC, source: { script: 'node -v' } }, poll);
  assert.equal(failing.provisioningState, 'Succeeded', 'treatFailureAsDeploymentFailure is off by default');
  const fiv = (await compute.virtualMachineRunCommands.getByVirtualMachine(RG, 'vm-managed', 'needs-node', { expand: 'instanceView' })).instanceView!;
  assert.equal(fiv.executionState, 'Failed');
  assert.equal(fiv.exitCode, 127);
  assert.match(fiv.error!, /node: command not found/);

  // asyncExecution: provisioning completes while the script still runs
  const bg = await compute.virtualMachineRunCommands.createOrUpdate(RG, 'vm-managed', 'long', { location: LOC, source: { script: 'sleep 30' }, asyncExecution: true }, poll);
  assert.equal(bg.provisioningState, 'Succeeded');
  assert.equal((await compute.virtualMachineRunCommands.getByVirtualMachine(RG, 'vm-managed', 'long', { expand: 'instanceView' })).instanceView!.executionState, 'Running');
  await compute.virtualMachineRunCommands.delete(RG, 'vm-managed', 'long', poll);
  await until('the deleted command\'s script to stop', () => !sim.vmProcesses('vm-managed').some((p) => p.command.includes('script-')));

  for (let i = 0; i < 23; i++) {
    await compute.virtualMachineRunCommands.createOrUpdate(RG, 'vm-managed', `rc-${i}`, { location: LOC, source: { script: 'true' }, asyncExecution: true }, poll);
  }
  const listed = [];
  for await (const x of compute.virtualMachineRunCommands.listByVirtualMachine(RG, 'vm-managed')) listed.push(x.name);
  assert.equal(listed.length, 25);
  await assert.rejects(compute.virtualMachineRunCommands.createOrUpdate(RG, 'vm-managed', 'one-too-many', { location: LOC, source: { script: 'true' } }, poll),
    (e: { statusCode?: number; message: string }) => e.statusCode === 409 && /maximum number of managed Run commands \(max=25, current=25\)/.test(e.message));
  // updating an existing one is still allowed
  const again = await compute.virtualMachineRunCommands.createOrUpdate(RG, 'vm-managed', 'rc-0', { location: LOC, source: { script: 'echo rerun' } }, poll);
  assert.equal(again.provisioningState, 'Succeeded');
});
