// THE ARM SIMULATOR'S COMPUTE, NETWORK AND STORAGE — a test stand-in, not Azure. Virtual machines
// (whose Run Command scripts really run, see vm-runtime.ts), managed disks, virtual networks and
// subnets, NICs, network security groups, private endpoints with DNS zone groups, private DNS
// zones with links and A records, and storage accounts whose data plane is the run's Azurite.
// Routes are called from server.ts with the path split at `providers`.
import { randomUUID, randomBytes } from 'node:crypto';
import path from 'node:path';
import { ArmError, type SimOperation, type SimState } from './model.ts';
import { VmSandbox, type RunParameter, type ScriptRun, type VmProcess } from './vm-runtime.ts';

export interface AzuriteEndpoints { blobEndpoint: string; queueEndpoint: string; accountKey: string }

export interface InfraHooks {
  url(): string;
  dir(): string;
  startLro(op: SimOperation): void;
  azurite(): AzuriteEndpoints | undefined;
}

export interface Resource {
  id: string; name: string; type: string; subscriptionId: string; resourceGroup: string; location: string;
  tags: Record<string, string>; properties: Record<string, any>;
  /** top-level fields other than the common ones (identity, sku, kind, etag) */
  extra: Record<string, unknown>;
}

export interface ManagedRunCommand {
  name: string; location: string; tags: Record<string, string>; properties: Record<string, any>;
  run: ScriptRun | null; provisioningState: string;
}

export interface SimVm extends Resource {
  vmId: string;
  power: 'running' | 'deallocating' | 'deallocated' | 'stopped' | 'starting';
  sandbox: VmSandbox;
  /** the action Run Command in progress (only one at a time) */
  actionRun: ScriptRun | null;
  runCommands: Map<string, ManagedRunCommand>;
}

type Resp = { status: number; body?: unknown; headers?: Record<string, string> };

const low = (s: string) => s.toLowerCase();
const MAX_MANAGED_RUN_COMMANDS = 25;
const STORAGE_GROUP_IDS = ['blob', 'queue', 'table', 'file', 'web', 'dfs'];

/** Canonical spelling of each resource type path segment the simulator serves. */
const CANON: Record<string, string> = Object.fromEntries([
  'Microsoft.Compute', 'virtualMachines', 'disks', 'runCommands',
  'Microsoft.Network', 'virtualNetworks', 'subnets', 'networkInterfaces', 'networkSecurityGroups', 'securityRules', 'privateEndpoints',
  'privateDnsZoneGroups', 'privateDnsZones', 'virtualNetworkLinks',
  'Microsoft.Storage', 'storageAccounts',
].map((s) => [low(s), s]));

/** Resource kinds stored generically, with whether a PUT is a long-running operation. */
const KINDS = new Set([
  'Microsoft.Compute/disks',
  'Microsoft.Network/virtualNetworks', 'Microsoft.Network/virtualNetworks/subnets', 'Microsoft.Network/networkInterfaces',
  'Microsoft.Network/networkSecurityGroups', 'Microsoft.Network/privateEndpoints', 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups',
  'Microsoft.Network/privateDnsZones', 'Microsoft.Network/privateDnsZones/virtualNetworkLinks',
]);
const RECORD_TYPES = ['A', 'AAAA', 'CNAME', 'MX', 'PTR', 'SOA', 'SRV', 'TXT'];

export class Infra {
  readonly resources = new Map<string, Resource>();
  readonly #st: SimState;
  readonly #h: InfraHooks;
  /** operation id -> what its result URL returns once done */
  readonly #results = new Map<string, () => Resp>();
  /** next host number per subnet id (Azure keeps .0-.3 for itself) */
  readonly #ips = new Map<string, number>();

  constructor(state: SimState, hooks: InfraHooks) {
    this.#st = state;
    this.#h = hooks;
  }

  // ---------- helpers ----------
  #rgScope(sub: string, rg: string) { return `/subscriptions/${sub}/resourceGroups/${rg}`; }
  #get(id: string): Resource | undefined { return this.resources.get(low(id)); }
  #must(id: string, kind: string): Resource {
    const r = this.#get(id);
    if (!r || low(r.type) !== low(kind)) throw new ArmError(404, 'ResourceNotFound', `The Resource '${kind}/${id.split('/').pop()}' was not found.`);
    return r;
  }
  #ref(id: unknown, kind: string, by: string): Resource {
    const r = typeof id === 'string' ? this.#get(id) : undefined;
    if (!r || low(r.type) !== low(kind)) throw new ArmError(400, 'InvalidResourceReference', `Resource ${String(id)} referenced by resource ${by} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`);
    return r;
  }
  #children(parentId: string, kind: string): Resource[] {
    const prefix = low(parentId) + '/';
    return [...this.resources.values()].filter((r) => r.type === kind && low(r.id).startsWith(prefix) && !low(r.id).slice(prefix.length).split('/').slice(2).length);
  }
  vms(): SimVm[] { return [...this.resources.values()].filter((r): r is SimVm => r.type === 'Microsoft.Compute/virtualMachines'); }
  findVm(idOrName: string): SimVm {
    const vm = this.vms().find((v) => low(v.id) === low(idOrName) || low(v.name) === low(idOrName));
    if (!vm) throw new Error(`simulator: no virtual machine ${idOrName}`);
    return vm;
  }

  #opUrl(op: SimOperation, provider: string, query: Record<string, string>, result = false): string {
    const base = `${this.#h.url()}/subscriptions/${op.subscriptionId}/providers/${provider}/locations/${encodeURIComponent(op.location)}/operations/${op.id}`;
    return `${base}${result ? '/result?monitor=true&' : '?'}api-version=${query['api-version'] ?? '2024-07-01'}`;
  }

  /** Starts an operation: status at Azure-AsyncOperation, the outcome at Location. */
  #lro(r: { subscriptionId: string; location: string }, provider: string, query: Record<string, string>, complete: () => void,
    result: () => Resp, opts: { step?: () => boolean; undo?: () => void } = {}): { op: SimOperation; headers: Record<string, string> } {
    const op = this.#st.newOperation(r, complete, opts.step, opts.undo);
    this.#h.startLro(op);
    this.#results.set(op.id, result);
    return { op, headers: { 'azure-asyncoperation': this.#opUrl(op, provider, query), location: this.#opUrl(op, provider, query, true) } };
  }

  #allocateIp(subnet: Resource): string {
    const prefix = String(subnet.properties.addressPrefix ?? subnet.properties.addressPrefixes?.[0] ?? '10.0.0.0/24');
    const [a, b, c] = prefix.split('/')[0]!.split('.');
    const n = this.#ips.get(low(subnet.id)) ?? 4;
    this.#ips.set(low(subnet.id), n + 1);
    return `${a}.${b}.${c}.${n}`;
  }

  // ---------- subscription-level routes: lists and operation polls ----------
  routeSubscription(method: string, segs: string[], sub: string): Resp | null {
    const l = segs.map(low);
    const ns = CANON[l[3]!];
    if (!ns || method !== 'GET') return null;
    // /subscriptions/{s}/providers/{ns}/locations/{loc}/operations/{id}[/result]
    if (l[4] === 'locations' && l[6] === 'operations' && segs.length >= 8) {
      const op = this.#st.poll(segs[7]!);
      if (segs.length === 9 && l[8] === 'result') {
        if (op.status === 'InProgress') return { status: 202 };
        if (op.status === 'Failed') return { status: 200, body: { status: 'Failed', error: op.error } };
        return this.#results.get(op.id)?.() ?? { status: 200 };
      }
      const b: Record<string, unknown> = { name: op.id, status: op.status, startTime: new Date().toISOString() };
      if (op.error) b.error = op.error;
      return { status: 200, body: b };
    }
    if (segs.length === 5) {
      const type = `${ns}/${CANON[l[4]!] ?? segs[4]}`;
      return { status: 200, body: { value: [...this.resources.values()].filter((r) => r.type === type && low(r.subscriptionId) === low(sub)).map((r) => this.render(r, {})) } };
    }
    return null;
  }

  /** Every stored top-level resource, for the generic resources list. */
  genericList(sub: string): { id: string; name: string; type: string; location: string; tags: Record<string, string> }[] {
    return [...this.resources.values()].filter((r) => low(r.subscriptionId) === low(sub) && r.type.split('/').length === 2)
      .map((r) => ({ id: r.id, name: r.name, type: r.type, location: r.location, tags: r.tags }));
  }

  // ---------- resource-group routes ----------
  /** segs: the whole path; segs[4] is 'providers'. Returns null when not an infra route. */
  route(method: string, segs: string[], query: Record<string, string>, body: any, sub: string, rg: string): Resp | null {
    const l = segs.map(low);
    const ns = CANON[l[5]!];
    if (!ns || !['Microsoft.Compute', 'Microsoft.Network', 'Microsoft.Storage'].includes(ns)) return null;
    const rest = segs.slice(6);
    const typeSegs: string[] = [];
    const names: string[] = [];
    for (let i = 0; i < rest.length; i += 2) { typeSegs.push(rest[i]!); if (i + 1 < rest.length) names.push(rest[i + 1]!); }
    const canonTypes = typeSegs.map((t) => CANON[low(t)] ?? t);
    const scope = this.#rgScope(sub, rg);
    const idOf = (n: number) => `${scope}/providers/${ns}/${canonTypes.slice(0, n).map((t, i) => `${t}/${names[i]}`).join('/')}`;
    const kind = `${ns}/${canonTypes.join('/')}`;
    const isCollection = typeSegs.length > names.length;

    // Compute: virtual machines and their run commands
    if (ns === 'Microsoft.Compute' && low(typeSegs[0]!) === 'virtualmachines') return this.#vmRoute(method, segs, typeSegs, names, query, body, sub, rg, idOf);
    if (ns === 'Microsoft.Storage' && low(typeSegs[0]!) === 'storageaccounts') return this.#storageRoute(method, typeSegs, names, query, body, sub, rg, idOf);
    // Private DNS record sets: privateDnsZones/{zone}/{A|...|ALL|recordsets}[/{name}]
    if (kind.startsWith('Microsoft.Network/privateDnsZones/') && typeSegs.length === 2 && names.length >= 1 && RECORD_TYPES.concat(['ALL', 'RECORDSETS']).includes(typeSegs[1]!.toUpperCase())) {
      return this.#recordRoute(method, typeSegs[1]!.toUpperCase(), names[1], body, this.#must(idOf(1), 'Microsoft.Network/privateDnsZones'));
    }
    if (!KINDS.has(kind)) throw new ArmError(404, 'NotFound', `simulator: no ${kind} routes`);
    if (isCollection) {
      if (method !== 'GET') throw new ArmError(405, 'MethodNotAllowed', `${method} on a collection`);
      const items = names.length === 0
        ? [...this.resources.values()].filter((r) => r.type === kind && low(r.subscriptionId) === low(sub) && low(r.resourceGroup) === low(rg))
        : this.#children(idOf(names.length), kind);
      if (names.length) this.#must(idOf(names.length), kind.split('/').slice(0, -1).join('/'));
      return { status: 200, body: { value: items.map((r) => this.render(r, query)) } };
    }
    const id = idOf(names.length);
    if (names.length > 1) this.#must(idOf(names.length - 1), kind.split('/').slice(0, -1).join('/'));
    if (method === 'GET') return { status: 200, body: this.render(this.#must(id, kind), query) };
    if (method === 'PUT') return this.#put(kind, id, names.at(-1)!, body ?? {}, query, sub, rg);
    if (method === 'DELETE') return this.#delete(kind, id, query);
    if (method === 'PATCH') {
      const r = this.#must(id, kind);
      if (body?.tags) r.tags = body.tags;
      return { status: 200, body: this.render(r, query) };
    }
    throw new ArmError(405, 'MethodNotAllowed', `${method} is not supported on ${kind}`);
  }

  // ---------- generic PUT / DELETE with each kind's rules ----------
  #put(kind: string, id: string, name: string, body: any, query: Record<string, string>, sub: string, rg: string): Resp {
    const existing = this.#get(id);
    const props = { ...(body.properties ?? {}) };
    const parent = this.#get(id.split('/').slice(0, -2).join('/'));
    const r: Resource = existing ?? {
      id, name, type: kind, subscriptionId: sub, resourceGroup: rg, location: body.location ?? parent?.location ?? this.#st.resourceGroup(sub, rg).location,
      tags: {}, properties: {}, extra: {},
    };
    if (body.tags) r.tags = body.tags;
    const created: Resource[] = [];
    switch (kind) {
      case 'Microsoft.Network/virtualNetworks': {
        const subnets = (props.subnets ?? []) as any[];
        delete props.subnets;
        const keep = new Set(subnets.map((s) => low(s.name)));
        for (const old of existing ? this.#children(id, 'Microsoft.Network/virtualNetworks/subnets') : []) {
          if (keep.has(low(old.name))) continue;
          if (this.#subnetUsers(old).length) throw new ArmError(400, 'InUseSubnetCannotBeDeleted', `Subnet ${old.name} is in use by ${this.#subnetUsers(old)[0]} and cannot be deleted.`);
          this.resources.delete(low(old.id));
        }
        for (const s of subnets) {
          const sid = `${id}/subnets/${s.name}`;
          const sr: Resource = this.#get(sid) ?? { id: sid, name: s.name, type: 'Microsoft.Network/virtualNetworks/subnets', subscriptionId: sub, resourceGroup: rg, location: r.location, tags: {}, properties: {}, extra: {} };
          sr.properties = { ...sr.properties, ...(s.properties ?? {}), provisioningState: 'Succeeded' };
          if (sr.properties.networkSecurityGroup) this.#ref(sr.properties.networkSecurityGroup.id, 'Microsoft.Network/networkSecurityGroups', sid);
          created.push(sr);
        }
        break;
      }
      case 'Microsoft.Network/virtualNetworks/subnets':
        if (props.networkSecurityGroup) this.#ref(props.networkSecurityGroup.id, 'Microsoft.Network/networkSecurityGroups', id);
        break;
      case 'Microsoft.Network/networkSecurityGroups':
        props.securityRules = (props.securityRules ?? []).map((s: any) => ({ ...s, id: `${id}/securityRules/${s.name}`, properties: { ...(s.properties ?? {}), provisioningState: 'Succeeded' } }));
        break;
      case 'Microsoft.Network/networkInterfaces': {
        if (props.networkSecurityGroup) this.#ref(props.networkSecurityGroup.id, 'Microsoft.Network/networkSecurityGroups', id);
        const configs = (props.ipConfigurations ?? []) as any[];
        if (!configs.length) throw new ArmError(400, 'InvalidRequestFormat', 'Network interface must have at least one IP configuration.');
        const old = (existing?.properties.ipConfigurations ?? []) as any[];
        props.ipConfigurations = configs.map((c, i) => {
          const subnet = this.#ref(c.properties?.subnet?.id, 'Microsoft.Network/virtualNetworks/subnets', id);
          if (low(this.#get(subnet.id.split('/subnets/')[0]!)!.location) !== low(r.location)) {
            throw new ArmError(400, 'InvalidResourceReference', `Subnet ${subnet.id} is not in the network interface's region ${r.location}.`);
          }
          const prev = old.find((o) => low(o.name) === low(c.name));
          const ip = c.properties?.privateIPAddress ?? prev?.properties?.privateIPAddress ?? this.#allocateIp(subnet);
          return { name: c.name, id: `${id}/ipConfigurations/${c.name}`, properties: { privateIPAllocationMethod: 'Dynamic', primary: i === 0, ...c.properties, privateIPAddress: ip, privateIPAddressVersion: 'IPv4', provisioningState: 'Succeeded' } };
        });
        if (existing?.properties.virtualMachine) props.virtualMachine = existing.properties.virtualMachine;
        if (existing?.properties.privateEndpoint) props.privateEndpoint = existing.properties.privateEndpoint;
        break;
      }
      case 'Microsoft.Network/privateEndpoints': {
        const subnet = this.#ref(props.subnet?.id, 'Microsoft.Network/virtualNetworks/subnets', id);
        const conns = [...(props.privateLinkServiceConnections ?? []), ...(props.manualPrivateLinkServiceConnections ?? [])] as any[];
        if (!conns.length) throw new ArmError(400, 'PrivateEndpointRequiresConnection', 'A private endpoint needs one private link service connection.');
        const dns: { fqdn: string; ipAddresses: string[] }[] = [];
        const nicId = (existing?.properties.networkInterfaces?.[0]?.id as string | undefined)
          ?? `${this.#rgScope(sub, rg)}/providers/Microsoft.Network/networkInterfaces/${name}.nic.${randomUUID()}`;
        const ip = existing?.extra.ip as string | undefined ?? this.#allocateIp(subnet);
        r.extra.ip = ip;
        props.privateLinkServiceConnections = conns.map((c) => {
          const target = this.#ref(c.properties?.privateLinkServiceId, 'Microsoft.Storage/storageAccounts', id);
          const groups = (c.properties?.groupIds ?? []) as string[];
          if (groups.length !== 1 || !STORAGE_GROUP_IDS.includes(low(groups[0]!))) {
            throw new ArmError(400, 'PrivateEndpointBadRequest', `Call to Microsoft.Storage/storageAccounts failed. Error message: Invalid group id(s) ${JSON.stringify(groups)}; one of ${STORAGE_GROUP_IDS.join(', ')} is expected.`);
          }
          dns.push({ fqdn: `${target.name}.${low(groups[0]!)}.core.windows.net`, ipAddresses: [ip] });
          return {
            name: c.name, id: `${id}/privateLinkServiceConnections/${c.name}`,
            properties: { ...c.properties, provisioningState: 'Succeeded', privateLinkServiceConnectionState: { status: 'Approved', description: 'Auto-Approved', actionsRequired: 'None' } },
          };
        });
        delete props.manualPrivateLinkServiceConnections;
        props.customDnsConfigs = dns;
        props.networkInterfaces = [{ id: nicId }];
        if (!this.#get(nicId)) {
          const nic: Resource = {
            id: nicId, name: nicId.split('/').pop()!, type: 'Microsoft.Network/networkInterfaces', subscriptionId: sub, resourceGroup: rg, location: r.location, tags: {}, extra: {},
            properties: { provisioningState: 'Succeeded', privateEndpoint: { id }, ipConfigurations: [{ name: 'privateEndpointIpConfig', id: `${nicId}/ipConfigurations/privateEndpointIpConfig`, properties: { privateIPAddress: ip, privateIPAllocationMethod: 'Dynamic', subnet: { id: subnet.id }, primary: true, provisioningState: 'Succeeded' } }] },
          };
          created.push(nic);
        }
        break;
      }
      case 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups': {
        const pe = parent!;
        const configs = (props.privateDnsZoneConfigs ?? []) as any[];
        this.#removeZoneGroupRecords(existing);
        props.privateDnsZoneConfigs = configs.map((c) => {
          const zone = this.#ref(c.properties?.privateDnsZoneId, 'Microsoft.Network/privateDnsZones', id);
          // account.blob.core.windows.net is resolved through privatelink.blob.core.windows.net
          const suffix = low(zone.name).replace(/^privatelink\./, '');
          const recordSets = ((pe.properties.customDnsConfigs ?? []) as { fqdn: string; ipAddresses: string[] }[])
            .filter((d) => low(d.fqdn).endsWith('.' + suffix))
            .map((d) => {
              const recordSetName = d.fqdn.slice(0, -(suffix.length + 1));
              this.#records(zone).set(`A/${low(recordSetName)}`, { type: 'A', name: recordSetName, ttl: 10, aRecords: d.ipAddresses.map((ip) => ({ ipv4Address: ip })), zoneGroup: low(id) });
              return { recordType: 'A', recordSetName, fqdn: `${recordSetName}.${zone.name}`, ttl: 10, ipAddresses: d.ipAddresses, provisioningState: 'Succeeded' };
            });
          return { name: c.name, properties: { privateDnsZoneId: zone.id, recordSets } };
        });
        break;
      }
      case 'Microsoft.Network/privateDnsZones':
        if (low(r.location) !== 'global') throw new ArmError(400, 'BadRequest', 'The location of a private DNS zone must be global.');
        break;
      case 'Microsoft.Network/privateDnsZones/virtualNetworkLinks': {
        if (low(r.location) !== 'global') throw new ArmError(400, 'BadRequest', 'The location of a virtual network link must be global.');
        this.#ref(props.virtualNetwork?.id, 'Microsoft.Network/virtualNetworks', id);
        props.virtualNetworkLinkState = 'Completed';
        props.registrationEnabled = Boolean(props.registrationEnabled);
        break;
      }
      case 'Microsoft.Compute/disks':
        break;
    }
    r.properties = { ...props, provisioningState: 'Updating' };
    if (!existing) this.resources.set(low(id), r);
    for (const c of created) this.resources.set(low(c.id), c);
    r.extra.etag = `W/"${randomUUID()}"`;
    const provider = kind.split('/')[0]!;
    const { headers } = this.#lro(r, provider, query, () => { r.properties.provisioningState = 'Succeeded'; }, () => ({ status: 200, body: this.render(r, {}) }),
      { undo: () => { r.properties.provisioningState = 'Failed'; } });
    return { status: existing ? 200 : 201, body: this.render(r, query), headers: { 'azure-asyncoperation': headers['azure-asyncoperation']! } };
  }

  #subnetUsers(subnet: Resource): string[] {
    const users: string[] = [];
    for (const r of this.resources.values()) {
      if (r.type === 'Microsoft.Network/networkInterfaces' && (r.properties.ipConfigurations ?? []).some((c: any) => low(c.properties?.subnet?.id ?? '') === low(subnet.id))) users.push(r.id);
      if (r.type === 'Microsoft.Network/privateEndpoints' && low(r.properties.subnet?.id ?? '') === low(subnet.id)) users.push(r.id);
    }
    return users;
  }

  #delete(kind: string, id: string, query: Record<string, string>): Resp {
    const r = this.#get(id);
    if (!r) return { status: 204 };
    switch (kind) {
      case 'Microsoft.Network/networkInterfaces':
        if (r.properties.virtualMachine) throw new ArmError(400, 'NicInUse', `Network Interface ${id} is used by existing resource ${r.properties.virtualMachine.id}. In order to delete the network interface, it must be dissociated from the resource. To learn more, see aka.ms/deletenic.`);
        if (r.properties.privateEndpoint) throw new ArmError(400, 'NicInUse', `Network Interface ${id} is used by existing resource ${r.properties.privateEndpoint.id}. In order to delete the network interface, it must be dissociated from the resource.`);
        break;
      case 'Microsoft.Network/virtualNetworks/subnets':
        if (this.#subnetUsers(r).length) throw new ArmError(400, 'InUseSubnetCannotBeDeleted', `Subnet ${r.name} is in use by ${this.#subnetUsers(r)[0]} and cannot be deleted.`);
        break;
      case 'Microsoft.Network/virtualNetworks':
        for (const s of this.#children(id, 'Microsoft.Network/virtualNetworks/subnets')) {
          if (this.#subnetUsers(s).length) throw new ArmError(400, 'InUseSubnetCannotBeDeleted', `Subnet ${s.name} is in use by ${this.#subnetUsers(s)[0]} and cannot be deleted.`);
        }
        break;
      case 'Microsoft.Network/networkSecurityGroups':
        for (const x of this.resources.values()) {
          if (low(x.properties.networkSecurityGroup?.id ?? '') === low(id)) throw new ArmError(400, 'InUseNetworkSecurityGroupCannotBeDeleted', `Network security group ${id} cannot be deleted because it is in use by ${x.id}.`);
        }
        break;
      case 'Microsoft.Network/privateDnsZones':
        if (this.#children(id, 'Microsoft.Network/privateDnsZones/virtualNetworkLinks').length) {
          throw new ArmError(409, 'CannotDeleteResource', `Can not delete resource before nested resources are deleted.`);
        }
        break;
    }
    r.properties.provisioningState = 'Deleting';
    const { headers } = this.#lro(r, kind.split('/')[0]!, query, () => this.#remove(r), () => ({ status: 200 }));
    return { status: 202, headers };
  }

  #remove(r: Resource): void {
    this.resources.delete(low(r.id));
    for (const k of [...this.resources.keys()]) if (k.startsWith(low(r.id) + '/')) this.resources.delete(k);
    if (r.type === 'Microsoft.Network/privateEndpoints') {
      for (const [k, x] of this.resources) if (low(x.properties.privateEndpoint?.id ?? '') === low(r.id)) this.resources.delete(k);
      for (const z of this.resources.values()) if (z.type === 'Microsoft.Network/privateDnsZones') {
        for (const [k, rec] of this.#records(z)) if (rec.zoneGroup?.startsWith(low(r.id) + '/')) this.#records(z).delete(k);
      }
    }
    if (r.type === 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups') this.#removeZoneGroupRecords(r);
  }

  #removeZoneGroupRecords(group: Resource | undefined): void {
    if (!group) return;
    for (const z of this.resources.values()) if (z.type === 'Microsoft.Network/privateDnsZones') {
      for (const [k, rec] of this.#records(z)) if (rec.zoneGroup === low(group.id)) this.#records(z).delete(k);
    }
  }

  // ---------- private DNS record sets ----------
  #records(zone: Resource): Map<string, { type: string; name: string; ttl: number; aRecords?: { ipv4Address: string }[]; zoneGroup?: string; [k: string]: unknown }> {
    return (zone.extra.records ??= new Map()) as any;
  }
  #recordJson(zone: Resource, rec: { type: string; name: string; ttl: number; [k: string]: unknown }) {
    const { type, name, ttl, zoneGroup: _z, ...rest } = rec;
    return {
      id: `${zone.id}/${type}/${name}`, name, type: `Microsoft.Network/privateDnsZones/${type}`, etag: randomUUID(),
      properties: { ttl, fqdn: `${name}.${zone.name}.`, isAutoRegistered: false, ...rest },
    };
  }
  #recordRoute(method: string, type: string, name: string | undefined, body: any, zone: Resource): Resp {
    const recs = this.#records(zone);
    if (name === undefined) {
      if (method !== 'GET') throw new ArmError(405, 'MethodNotAllowed', `${method} on record sets`);
      const soa = { type: 'SOA', name: '@', ttl: 3600, soaRecord: { email: 'azureprivatedns-host.microsoft.com', host: 'azureprivatedns.net', serialNumber: 1 } };
      const all = [soa, ...recs.values()].filter((r) => type === 'ALL' || type === 'RECORDSETS' || r.type === type);
      return { status: 200, body: { value: all.map((r) => this.#recordJson(zone, r)) } };
    }
    const k = `${type}/${low(name)}`;
    if (method === 'GET') {
      const rec = recs.get(k);
      if (!rec) throw new ArmError(404, 'NotFound', `The resource record '${name}' does not exist in resource group '${zone.resourceGroup}' of subscription '${zone.subscriptionId}'.`);
      return { status: 200, body: this.#recordJson(zone, rec) };
    }
    if (method === 'PUT' || method === 'PATCH') {
      const p = body?.properties ?? {};
      const existed = recs.has(k);
      const rec = { ...(recs.get(k) ?? {}), ...p, type, name, ttl: Number(p.ttl ?? 3600) };
      delete rec.fqdn;
      recs.set(k, rec);
      return { status: existed ? 200 : 201, body: this.#recordJson(zone, rec) };
    }
    if (method === 'DELETE') { recs.delete(k); return { status: 200 }; }
    throw new ArmError(405, 'MethodNotAllowed', `${method} on a record set`);
  }

  // ---------- JSON ----------
  render(r: Resource, query: Record<string, string>): Record<string, unknown> {
    if (r.type === 'Microsoft.Compute/virtualMachines') return this.#vmJson(r as SimVm, low(query.$expand ?? '') === 'instanceview');
    if (r.type === 'Microsoft.Storage/storageAccounts') return this.#storageJson(r);
    const { etag, ip: _ip, records: _records, ...extra } = r.extra;
    const props: Record<string, unknown> = { ...r.properties };
    switch (r.type) {
      case 'Microsoft.Network/virtualNetworks':
        props.subnets = this.#children(r.id, 'Microsoft.Network/virtualNetworks/subnets').map((s) => this.render(s, query));
        break;
      case 'Microsoft.Network/virtualNetworks/subnets': {
        const users = this.#subnetUsers(r);
        props.ipConfigurations = users.filter((u) => u.includes('/networkInterfaces/')).flatMap((u) => (this.#get(u)!.properties.ipConfigurations as any[])
          .filter((c) => low(c.properties?.subnet?.id ?? '') === low(r.id)).map((c) => ({ id: c.id })));
        props.privateEndpoints = users.filter((u) => u.includes('/privateEndpoints/')).map((id) => ({ id }));
        break;
      }
      case 'Microsoft.Network/networkSecurityGroups':
        props.networkInterfaces = [...this.resources.values()].filter((x) => x.type === 'Microsoft.Network/networkInterfaces' && low(x.properties.networkSecurityGroup?.id ?? '') === low(r.id)).map((x) => ({ id: x.id }));
        props.subnets = [...this.resources.values()].filter((x) => x.type === 'Microsoft.Network/virtualNetworks/subnets' && low(x.properties.networkSecurityGroup?.id ?? '') === low(r.id)).map((x) => ({ id: x.id }));
        break;
      case 'Microsoft.Network/privateDnsZones': {
        const links = this.#children(r.id, 'Microsoft.Network/privateDnsZones/virtualNetworkLinks');
        props.numberOfRecordSets = 1 + this.#records(r).size;
        props.numberOfVirtualNetworkLinks = links.length;
        props.numberOfVirtualNetworkLinksWithRegistration = links.filter((x) => x.properties.registrationEnabled).length;
        props.maxNumberOfRecordSets = 25000;
        break;
      }
    }
    const child = r.type.split('/').length > 2 && r.type !== 'Microsoft.Network/privateDnsZones/virtualNetworkLinks';
    return {
      id: r.id, name: r.name, type: r.type, ...(etag ? { etag } : {}), ...(child ? {} : { location: r.location, tags: r.tags }), ...extra, properties: props,
    };
  }

  // ---------- storage accounts ----------
  #storageJson(r: Resource): Record<string, unknown> {
    const az = this.#h.azurite();
    const slash = (u: string) => (u.endsWith('/') ? u : `${u}/`);
    // Every account's data plane is the run's one Azurite account (devstoreaccount1).
    const endpoints = az
      ? { blob: slash(az.blobEndpoint), queue: slash(az.queueEndpoint) }
      : { blob: `https://${r.name}.blob.core.windows.net/`, queue: `https://${r.name}.queue.core.windows.net/` };
    const { etag: _e, ...extra } = r.extra;
    return {
      id: r.id, name: r.name, type: r.type, location: r.location, tags: r.tags, ...extra,
      properties: {
        ...r.properties,
        primaryEndpoints: { ...endpoints, table: `https://${r.name}.table.core.windows.net/`, file: `https://${r.name}.file.core.windows.net/`, dfs: `https://${r.name}.dfs.core.windows.net/`, web: `https://${r.name}.z6.web.core.windows.net/` },
        primaryLocation: r.location, statusOfPrimary: 'available',
        privateEndpointConnections: [...this.resources.values()].filter((pe) => pe.type === 'Microsoft.Network/privateEndpoints'
          && (pe.properties.privateLinkServiceConnections ?? []).some((c: any) => low(c.properties?.privateLinkServiceId ?? '') === low(r.id)))
          .map((pe) => ({ id: `${r.id}/privateEndpointConnections/${pe.name}.${randomBytes(4).toString('hex')}`, properties: { privateEndpoint: { id: pe.id }, privateLinkServiceConnectionState: { status: 'Approved', description: 'Auto-Approved', actionRequired: 'None' }, provisioningState: 'Succeeded' } })),
      },
    };
  }

  #storageRoute(method: string, typeSegs: string[], names: string[], query: Record<string, string>, body: any, sub: string, rg: string, idOf: (n: number) => string): Resp {
    const kind = 'Microsoft.Storage/storageAccounts';
    if (names.length === 0) {
      if (method !== 'GET') throw new ArmError(405, 'MethodNotAllowed', `${method} on storage accounts`);
      return { status: 200, body: { value: [...this.resources.values()].filter((r) => r.type === kind && low(r.subscriptionId) === low(sub) && low(r.resourceGroup) === low(rg)).map((r) => this.#storageJson(r)) } };
    }
    const id = idOf(1);
    const name = names[0]!;
    if (typeSegs.length === 2 && names.length === 1 && method === 'POST') {
      const r = this.#must(id, kind);
      const action = low(typeSegs[1]!);
      if (action === 'listkeys' || action === 'regeneratekey') {
        const key = this.#h.azurite()?.accountKey ?? (r.extra.key as string);
        // Azurite has one key for its account: key1 and key2 are both that key.
        return { status: 200, body: { keys: ['key1', 'key2'].map((keyName) => ({ keyName, value: key, permissions: 'FULL', creationTime: (r.extra.created as Date).toISOString() })) } };
      }
      throw new ArmError(404, 'NotFound', `simulator: no storage account action ${typeSegs[1]}`);
    }
    if (typeSegs.length !== 1) throw new ArmError(404, 'NotFound', `simulator: no storage route ${typeSegs.join('/')}`);
    if (method === 'GET') return { status: 200, body: this.#storageJson(this.#must(id, kind)) };
    if (method === 'PATCH') {
      const r = this.#must(id, kind);
      if (body?.tags) r.tags = body.tags;
      Object.assign(r.properties, body?.properties ?? {});
      return { status: 200, body: this.#storageJson(r) };
    }
    if (method === 'DELETE') {
      const r = this.#get(id);
      if (!r) return { status: 204 };
      const pe = [...this.resources.values()].find((x) => x.type === 'Microsoft.Network/privateEndpoints' && (x.properties.privateLinkServiceConnections ?? []).some((c: any) => low(c.properties?.privateLinkServiceId ?? '') === low(id)));
      if (pe) throw new ArmError(409, 'StorageAccountHasPrivateEndpoints', `The storage account has private endpoint connections (${pe.id}); delete them first.`);
      this.resources.delete(low(id));
      return { status: 200 };
    }
    if (method === 'PUT') {
      if (!/^[a-z0-9]{3,24}$/.test(name)) throw new ArmError(400, 'AccountNameInvalid', `${name} is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only.`);
      const taken = [...this.resources.values()].find((x) => x.type === kind && low(x.name) === low(name) && low(x.id) !== low(id));
      if (taken) throw new ArmError(409, 'StorageAccountAlreadyTaken', `The storage account named ${name} is already taken.`);
      if (!body?.location || !body?.sku?.name) throw new ArmError(400, 'InvalidRequestContent', 'location and sku.name are required to create a storage account.');
      const existing = this.#get(id);
      if (existing) {
        // An existing account: its properties change at once (Azure answers 200 with the account).
        if (body.tags) existing.tags = body.tags;
        Object.assign(existing.properties, body.properties ?? {});
        return { status: 200, body: this.#storageJson(existing) };
      }
      const r: Resource = {
        id, name, type: kind, subscriptionId: sub, resourceGroup: rg, location: body.location, tags: body.tags ?? {},
        properties: { ...(body.properties ?? {}), provisioningState: 'Creating', creationTime: new Date().toISOString() },
        extra: { sku: { name: body.sku.name, tier: String(body.sku.name).startsWith('Premium') ? 'Premium' : 'Standard' }, kind: body.kind ?? 'StorageV2', key: randomBytes(64).toString('base64'), created: new Date() },
      };
      this.resources.set(low(id), r);
      // 202 with only a Location header: the client polls it until a 200 carries the account.
      const op = this.#st.newOperation(r, () => { r.properties.provisioningState = 'Succeeded'; }, undefined, () => { this.resources.delete(low(id)); });
      this.#h.startLro(op);
      this.#results.set(op.id, () => ({ status: 200, body: this.#storageJson(r) }));
      return { status: 202, headers: { location: this.#opUrl(op, 'Microsoft.Storage', query, true) } };
    }
    throw new ArmError(405, 'MethodNotAllowed', `${method} is not supported on storage accounts`);
  }

  // ---------- virtual machines ----------
  #vmJson(vm: SimVm, withInstanceView: boolean): Record<string, unknown> {
    const { etag: _e, ...extra } = vm.extra;
    return {
      id: vm.id, name: vm.name, type: vm.type, location: vm.location, tags: vm.tags, ...extra,
      properties: { ...vm.properties, vmId: vm.vmId, ...(withInstanceView ? { instanceView: this.instanceView(vm) } : {}) },
    };
  }

  instanceView(vm: SimVm): Record<string, unknown> {
    const ps = String(vm.properties.provisioningState);
    return {
      computerName: vm.properties.osProfile?.computerName ?? vm.name, osName: 'ubuntu', osVersion: '22.04',
      vmAgent: { vmAgentVersion: '2.11.1.12', statuses: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: vm.power === 'running' ? 'Ready' : 'Not Ready', time: new Date().toISOString() }] },
      disks: [{ name: vm.properties.storageProfile?.osDisk?.name, statuses: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Provisioning succeeded' }] }],
      statuses: [
        { code: `ProvisioningState/${low(ps)}`, level: 'Info', displayStatus: `Provisioning ${low(ps)}`, time: new Date().toISOString() },
        { code: `PowerState/${vm.power}`, level: 'Info', displayStatus: `VM ${vm.power}` },
      ],
    };
  }

  #vmRoute(method: string, segs: string[], typeSegs: string[], names: string[], query: Record<string, string>, body: any, sub: string, rg: string, idOf: (n: number) => string): Resp {
    const kind = 'Microsoft.Compute/virtualMachines';
    if (names.length === 0) {
      if (method !== 'GET') throw new ArmError(405, 'MethodNotAllowed', `${method} on virtual machines`);
      return { status: 200, body: { value: this.vms().filter((v) => low(v.subscriptionId) === low(sub) && low(v.resourceGroup) === low(rg)).map((v) => this.#vmJson(v, false)) } };
    }
    const id = idOf(1);
    if (typeSegs.length === 1) {
      if (method === 'GET') return { status: 200, body: this.#vmJson(this.#must(id, kind) as SimVm, low(query.$expand ?? '') === 'instanceview') };
      if (method === 'PUT') return this.#putVm(id, names[0]!, body ?? {}, query, sub, rg);
      if (method === 'PATCH') {
        const vm = this.#must(id, kind) as SimVm;
        if (body?.tags) vm.tags = body.tags;
        const { headers } = this.#lro(vm, 'Microsoft.Compute', query, () => undefined, () => ({ status: 200, body: this.#vmJson(vm, false) }));
        return { status: 200, body: this.#vmJson(vm, false), headers };
      }
      if (method === 'DELETE') return this.#deleteVm(id, query);
    }
    const vm = this.#must(id, kind) as SimVm;
    const sub1 = low(typeSegs[1]!);
    if (typeSegs.length === 2 && names.length === 1 && method === 'GET' && sub1 === 'instanceview') return { status: 200, body: this.instanceView(vm) };
    if (typeSegs.length === 2 && names.length === 1 && method === 'POST') {
      if (sub1 === 'runcommand') return this.#actionRunCommand(vm, body ?? {}, query);
      if (sub1 === 'deallocate' || sub1 === 'poweroff') {
        // the guest goes down at once: every process of the VM dies
        vm.sandbox.killAll();
        vm.power = sub1 === 'deallocate' ? 'deallocating' : 'stopped';
        const { headers } = this.#lro(vm, 'Microsoft.Compute', query, () => { vm.power = sub1 === 'deallocate' ? 'deallocated' : 'stopped'; }, () => ({ status: 200 }));
        return { status: 202, headers };
      }
      if (sub1 === 'start' || sub1 === 'restart') {
        vm.sandbox.killAll();
        vm.power = 'starting';
        const { headers } = this.#lro(vm, 'Microsoft.Compute', query, () => { vm.power = 'running'; }, () => ({ status: 200 }));
        return { status: 202, headers };
      }
      throw new ArmError(404, 'NotFound', `simulator: no virtual machine action ${typeSegs[1]}`);
    }
    if (sub1 === 'runcommands') return this.#managedRoute(method, vm, names[1], query, body);
    throw new ArmError(404, 'NotFound', `simulator: no route ${segs.join('/')}`);
  }

  #putVm(id: string, name: string, body: any, query: Record<string, string>, sub: string, rg: string): Resp {
    const existing = this.#get(id) as SimVm | undefined;
    if (existing) {
      // updates of a deployed VM: tags and identity; the image and the NICs stay
      if (body.tags) existing.tags = body.tags;
      if (body.identity) existing.extra.identity = this.#identity(body.identity);
      const { headers } = this.#lro(existing, 'Microsoft.Compute', query, () => undefined, () => ({ status: 200, body: this.#vmJson(existing, false) }));
      return { status: 200, body: this.#vmJson(existing, false), headers: { 'azure-asyncoperation': headers['azure-asyncoperation']! } };
    }
    const p = body.properties ?? {};
    const location = body.location;
    if (!location) throw new ArmError(400, 'LocationRequired', 'The location property is required for this definition.');
    const image = p.storageProfile?.imageReference;
    if (!image?.publisher || !image?.offer || !image?.sku) throw new ArmError(400, 'InvalidParameter', "Required parameter 'imageReference' (publisher, offer, sku) is missing (null).");
    if (!p.hardwareProfile?.vmSize) throw new ArmError(400, 'InvalidParameter', "Required parameter 'hardwareProfile.vmSize' is missing (null).");
    const nics = (p.networkProfile?.networkInterfaces ?? []) as { id: string; properties?: { primary?: boolean; deleteOption?: string } }[];
    if (!nics.length) throw new ArmError(400, 'InvalidParameter', 'At least one network interface is required: networkProfile.networkInterfaces is empty.');
    const nicRes = nics.map((n) => this.#ref(n.id, 'Microsoft.Network/networkInterfaces', id));
    for (const n of nicRes) {
      if (low(n.location) !== low(location)) throw new ArmError(400, 'NicNotInSameLocation', `The network interface ${n.id} is in ${n.location}, not in the virtual machine's location ${location}.`);
      if (n.properties.virtualMachine) throw new ArmError(400, 'NicInUse', `Network Interface ${n.id} is used by existing resource ${n.properties.virtualMachine.id}.`);
    }
    const osDisk = p.storageProfile?.osDisk ?? {};
    const diskName = osDisk.name ?? `${name}_OsDisk_1_${randomBytes(16).toString('hex')}`;
    const diskId = `${this.#rgScope(sub, rg)}/providers/Microsoft.Compute/disks/${diskName}`;
    const { adminPassword: _pw, customData: _cd, ...osProfile } = p.osProfile ?? {};
    const vm: SimVm = {
      id, name, type: 'Microsoft.Compute/virtualMachines', subscriptionId: sub, resourceGroup: rg, location, tags: body.tags ?? {},
      properties: {
        hardwareProfile: p.hardwareProfile,
        storageProfile: {
          imageReference: { ...image, exactVersion: image.version === 'latest' || !image.version ? '22.04.202506200' : image.version },
          osDisk: { osType: 'Linux', createOption: 'FromImage', caching: 'ReadWrite', deleteOption: 'Detach', diskSizeGB: 30, ...osDisk, name: diskName, managedDisk: { storageAccountType: 'Premium_LRS', ...osDisk.managedDisk, id: diskId } },
          dataDisks: [],
        },
        osProfile: { computerName: name, adminUsername: 'azureuser', allowExtensionOperations: true, secrets: [], ...osProfile },
        networkProfile: { networkInterfaces: nics.map((n, i) => ({ id: n.id, properties: { primary: i === 0, deleteOption: 'Detach', ...n.properties } })) },
        provisioningState: 'Creating', timeCreated: new Date().toISOString(),
      },
      extra: body.identity ? { identity: this.#identity(body.identity) } : {},
      vmId: randomUUID(), power: 'starting',
      sandbox: new VmSandbox(path.join(this.#h.dir(), 'vms', `${name}-${randomBytes(3).toString('hex')}`)),
      actionRun: null, runCommands: new Map(),
    };
    this.resources.set(low(id), vm);
    for (const n of nicRes) n.properties.virtualMachine = { id };
    this.resources.set(low(diskId), {
      id: diskId, name: diskName, type: 'Microsoft.Compute/disks', subscriptionId: sub, resourceGroup: rg, location, tags: {}, extra: { managedBy: id, sku: { name: vm.properties.storageProfile.osDisk.managedDisk.storageAccountType } },
      properties: { osType: 'Linux', diskSizeGB: 30, diskState: 'Attached', provisioningState: 'Succeeded', creationData: { createOption: 'FromImage', imageReference: { id: `/Subscriptions/${sub}/Providers/Microsoft.Compute/Locations/${location}/Publishers/${image.publisher}/ArtifactTypes/VMImage/Offers/${image.offer}/Skus/${image.sku}/Versions/${vm.properties.storageProfile.imageReference.exactVersion}` } } },
    });
    const { headers } = this.#lro(vm, 'Microsoft.Compute', query, () => { vm.properties.provisioningState = 'Succeeded'; vm.power = 'running'; },
      () => ({ status: 200, body: this.#vmJson(vm, false) }), { undo: () => { vm.properties.provisioningState = 'Failed'; } });
    return { status: 201, body: this.#vmJson(vm, false), headers: { 'azure-asyncoperation': headers['azure-asyncoperation']! } };
  }

  #identity(identity: any): Record<string, unknown> {
    const type = String(identity.type ?? 'None');
    const out: Record<string, unknown> = { type };
    if (/SystemAssigned/i.test(type)) { out.principalId = randomUUID(); out.tenantId = randomUUID(); }
    if (identity.userAssignedIdentities) {
      out.userAssignedIdentities = Object.fromEntries(Object.keys(identity.userAssignedIdentities).map((k) => [k, { principalId: randomUUID(), clientId: randomUUID() }]));
    }
    return out;
  }

  #deleteVm(id: string, query: Record<string, string>): Resp {
    const vm = this.#get(id) as SimVm | undefined;
    if (!vm) return { status: 204 };
    vm.sandbox.killAll();
    vm.properties.provisioningState = 'Deleting';
    const { headers } = this.#lro(vm, 'Microsoft.Compute', query, () => {
      this.retired.push({ name: vm.name, runs: this.runCommandHistory(vm.id), logs: vm.sandbox.logFiles() });
      this.resources.delete(low(id));
      vm.sandbox.remove();
      for (const n of vm.properties.networkProfile.networkInterfaces as { id: string; properties: { deleteOption?: string } }[]) {
        const nic = this.#get(n.id);
        if (!nic) continue;
        delete nic.properties.virtualMachine;
        if (n.properties.deleteOption === 'Delete') this.resources.delete(low(n.id));
      }
      const osDisk = vm.properties.storageProfile.osDisk;
      const disk = this.#get(osDisk.managedDisk.id);
      if (disk) {
        delete disk.extra.managedBy;
        disk.properties.diskState = 'Unattached';
        if (osDisk.deleteOption === 'Delete') this.resources.delete(low(disk.id));
      }
    }, () => ({ status: 200 }));
    return { status: 202, headers };
  }

  #checkRunning(vm: SimVm): void {
    if (vm.power !== 'running' || vm.properties.provisioningState !== 'Succeeded') {
      throw new ArmError(409, 'OperationNotAllowed', `Operation 'RunCommand' is not allowed on VM '${vm.name}' since the VM is ${vm.power === 'running' ? 'still provisioning' : vm.power}.`);
    }
  }

  #actionRunCommand(vm: SimVm, body: any, query: Record<string, string>): Resp {
    if (body.commandId !== 'RunShellScript') throw new ArmError(404, 'NotFound', `The entity was not found in this Azure location. (commandId ${String(body.commandId)} on Linux)`);
    this.#checkRunning(vm);
    if (vm.actionRun && !vm.actionRun.done) throw new ArmError(409, 'Conflict', 'Run command extension execution is in progress. Please wait for completion before invoking a run command.');
    const script = ((body.script ?? []) as string[]).join('\n');
    let run: ScriptRun;
    try {
      run = vm.sandbox.run('action', null, script, (body.parameters ?? []) as RunParameter[], [], () => undefined);
    } catch (e) { throw new ArmError(400, 'InvalidParameter', (e as Error).message); }
    vm.actionRun = run;
    const result = (): Resp => {
      const state = run.exitCode === 0 ? 'succeeded' : 'failed';
      const entry = (stream: 'StdOut' | 'StdErr', message: string) => ({
        code: `ComponentStatus/${stream}/${state}`, level: state === 'succeeded' ? 'Info' : 'Error', displayStatus: `Provisioning ${state}`, message,
      });
      return { status: 200, body: { value: [entry('StdOut', vm.sandbox.stdout(run)), entry('StdErr', vm.sandbox.stderr(run))] } };
    };
    const { headers } = this.#lro(vm, 'Microsoft.Compute', query, () => undefined, result, { step: () => run.done });
    return { status: 202, headers };
  }

  // ---------- managed run commands ----------
  #managedJson(vm: SimVm, rc: ManagedRunCommand, withInstanceView: boolean): Record<string, unknown> {
    const { protectedParameters: _pp, ...props } = rc.properties;
    const run = rc.run;
    const state = !run ? 'Pending' : !run.done ? 'Running' : run.exitCode === 0 ? 'Succeeded' : 'Failed';
    const instanceView = run ? {
      executionState: state, executionMessage: run.done ? (run.exitCode === 0 ? '' : `Execution failed with exit code ${run.exitCode}`) : '',
      exitCode: run.exitCode ?? 0, output: vm.sandbox.stdout(run), error: vm.sandbox.stderr(run), startTime: run.startTime.toISOString(),
      ...(run.endTime ? { endTime: run.endTime.toISOString() } : {}),
    } : { executionState: 'Pending' };
    return {
      id: `${vm.id}/runCommands/${rc.name}`, name: rc.name, type: 'Microsoft.Compute/virtualMachines/runCommands', location: rc.location, tags: rc.tags,
      properties: { ...props, provisioningState: rc.provisioningState, ...(withInstanceView ? { instanceView } : {}) },
    };
  }

  #managedRoute(method: string, vm: SimVm, name: string | undefined, query: Record<string, string>, body: any): Resp {
    const expand = low(query.$expand ?? '') === 'instanceview';
    if (name === undefined) {
      if (method !== 'GET') throw new ArmError(405, 'MethodNotAllowed', `${method} on run commands`);
      return { status: 200, body: { value: [...vm.runCommands.values()].map((rc) => this.#managedJson(vm, rc, expand)) } };
    }
    const key = low(name);
    if (method === 'GET') {
      const rc = vm.runCommands.get(key);
      if (!rc) throw new ArmError(404, 'ResourceNotFound', `The Resource 'Microsoft.Compute/virtualMachines/${vm.name}/runCommands/${name}' was not found.`);
      return { status: 200, body: this.#managedJson(vm, rc, expand) };
    }
    if (method === 'DELETE') {
      const rc = vm.runCommands.get(key);
      if (!rc) return { status: 204 };
      if (rc.run && !rc.run.done) vm.sandbox.kill(rc.run); // deleting the resource stops its script
      rc.provisioningState = 'Deleting';
      const { headers } = this.#lro(vm, 'Microsoft.Compute', query, () => { vm.runCommands.delete(key); }, () => ({ status: 200 }));
      return { status: 202, headers };
    }
    if (method !== 'PUT' && method !== 'PATCH') throw new ArmError(405, 'MethodNotAllowed', `${method} on a run command`);
    const existing = vm.runCommands.get(key);
    if (!existing && vm.runCommands.size >= MAX_MANAGED_RUN_COMMANDS) {
      throw new ArmError(409, 'OperationNotAllowed', `The maximum number of managed Run commands (max=${MAX_MANAGED_RUN_COMMANDS}, current=${vm.runCommands.size}) has been exceeded.`);
    }
    this.#checkRunning(vm);
    const p = { ...(existing?.properties ?? {}), ...(body?.properties ?? {}) };
    const source = p.source ?? {};
    if (source.scriptUri || source.commandId) throw new ArmError(400, 'InvalidParameter', 'The simulator runs inline scripts only (properties.source.script).');
    if (typeof source.script !== 'string') throw new ArmError(400, 'InvalidParameter', "Required parameter 'source.script' is missing (null).");
    const rc: ManagedRunCommand = existing ?? { name, location: body?.location ?? vm.location, tags: {}, properties: {}, run: null, provisioningState: 'Creating' };
    rc.properties = p;
    rc.tags = body?.tags ?? rc.tags;
    rc.provisioningState = existing ? 'Updating' : 'Creating';
    if (rc.run && !rc.run.done) vm.sandbox.kill(rc.run);
    try {
      rc.run = vm.sandbox.run('managed', name, source.script, p.parameters ?? [], p.protectedParameters ?? [], () => undefined);
    } catch (e) { throw new ArmError(400, 'InvalidParameter', (e as Error).message); }
    vm.runCommands.set(key, rc);
    const run = rc.run;
    const failAsDeployment = p.treatFailureAsDeploymentFailure === true;
    const op = this.#lro(vm, 'Microsoft.Compute', query, () => { rc.provisioningState = 'Succeeded'; }, () => ({ status: 200, body: this.#managedJson(vm, rc, false) }), {
      // asyncExecution: provisioning completes as soon as the script has started
      step: () => {
        if (p.asyncExecution === true) return true;
        if (!run.done) return false;
        if (failAsDeployment && run.exitCode !== 0) {
          rc.provisioningState = 'Failed';
          this.#st.failOperation(op.op, 'VMExtensionProvisioningError', `Run command ${name} failed with exit code ${run.exitCode}.`);
          return false;
        }
        return true;
      },
    });
    return { status: existing ? 200 : 201, body: this.#managedJson(vm, rc, false), headers: { 'azure-asyncoperation': op.headers['azure-asyncoperation']! } };
  }

  // ---------- control surface ----------
  /** Deleted VMs: their Run Command history (scripts, outputs) and the text of their *.log files, kept for inspection. */
  readonly retired: Array<{ name: string; runs: ReturnType<Infra['runCommandHistory']>; logs: Record<string, string> }> = [];
  crashVm(idOrName: string): void { this.findVm(idOrName).sandbox.killAll(); }
  vmProcesses(idOrName: string): VmProcess[] { return this.findVm(idOrName).sandbox.processes(); }
  runCommandHistory(idOrName: string) {
    const vm = this.findVm(idOrName);
    return vm.sandbox.runs.map((r) => ({
      id: r.id, kind: r.kind, name: r.name, script: r.script, parameters: r.parameters, protectedParameterNames: r.protectedParameterNames,
      startTime: r.startTime, endTime: r.endTime, exitCode: r.exitCode, done: r.done, stdout: vm.sandbox.stdout(r), stderr: vm.sandbox.stderr(r),
    }));
  }
  /** The sandbox directory a VM's scripts run in. */
  vmSandbox(idOrName: string): string { return this.findVm(idOrName).sandbox.root; }
  stopAll(): void { for (const vm of this.vms()) vm.sandbox.killAll(); }
}
