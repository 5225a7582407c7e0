/**
 * A local fake of vCenter's Automation REST API (vSphere 7+ `/api` paths) over TLS:
 * `POST /api/session` (Basic auth -> JSON string session id), `GET /api/vcenter/vm?names=`,
 * `GET /api/vcenter/vm/{vm}` (VM info with `identity.bios_uuid`),
 * `POST /api/cis/tagging/tag-association?action=list-attached-tags`,
 * `GET /api/cis/tagging/tag/{id}`, `GET /api/cis/tagging/category/{id}`. Errors use vAPI's
 * `{error_type, messages[]}` body. Sessions can be expired to exercise re-login.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestCert } from '../pki.js';

export interface FakeVm {
  readonly moid: string;
  readonly name: string;
  readonly biosUuid: string;
  readonly instanceUuid: string;
  /** category name -> tag names */
  readonly tags: Readonly<Record<string, readonly string[]>>;
}

const urn = (kind: 'Tag' | 'Category'): string => `urn:vmomi:InventoryService${kind}:${randomUUID()}:GLOBAL`;

export class FakeVcenter {
  readonly #server: Server;
  readonly #sessions = new Set<string>();
  readonly #vms = new Map<string, FakeVm>();
  readonly #categories = new Map<string, string>(); // id -> name
  readonly #tags = new Map<string, { name: string; categoryId: string }>(); // id -> tag
  readonly #attached = new Map<string, string[]>(); // moid -> tag ids
  logins = 0;
  down = false;

  private constructor(tls: TestCert, readonly username: string, readonly password: string) {
    this.#server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
      req.on('end', () => {
        const send = (code: number, body: unknown): void => {
          res.writeHead(code, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        };
        const vapiError = (code: number, type: string, message: string, id: string): void =>
          send(code, { error_type: type, messages: [{ args: [], default_message: message, id }] });
        if (this.down) return vapiError(503, 'SERVICE_UNAVAILABLE', 'Service unavailable.', 'com.vmware.vapi.endpoint.unavailable');
        const url = new URL(req.url ?? '/', 'https://vcenter');
        if (req.method === 'POST' && url.pathname === '/api/session') {
          const expected = `Basic ${Buffer.from(`${this.username}:${this.password}`).toString('base64')}`;
          if (req.headers.authorization !== expected) return vapiError(401, 'UNAUTHENTICATED', 'Authentication required.', 'com.vmware.vapi.endpoint.method.authentication.required');
          const id = randomBytes(16).toString('hex');
          this.#sessions.add(id);
          this.logins++;
          return send(201, id);
        }
        const session = req.headers['vmware-api-session-id'];
        if (typeof session !== 'string' || !this.#sessions.has(session)) {
          return vapiError(401, 'UNAUTHENTICATED', 'Authentication required.', 'com.vmware.vapi.endpoint.method.authentication.required');
        }
        if (req.method === 'GET' && url.pathname === '/api/vcenter/vm') {
          const names = url.searchParams.getAll('names');
          const list = [...this.#vms.values()].filter((vm) => names.length === 0 || names.includes(vm.name));
          return send(200, list.map((vm) => ({ memory_size_MiB: 4096, vm: vm.moid, name: vm.name, power_state: 'POWERED_ON', cpu_count: 2 })));
        }
        const vmPath = /^\/api\/vcenter\/vm\/([^/]+)$/.exec(url.pathname);
        if (req.method === 'GET' && vmPath) {
          const vm = this.#vms.get(decodeURIComponent(vmPath[1]!));
          if (!vm) return vapiError(404, 'NOT_FOUND', `Virtual machine with identifier '${vmPath[1]}:...' does not exist.`, 'com.vmware.api.vcenter.vm.not_found');
          return send(200, {
            instant_clone_frozen: false,
            cdroms: {},
            memory: { size_MiB: 4096, hot_add_enabled: false },
            disks: {},
            parallel_ports: {},
            sata_adapters: {},
            cpu: { hot_remove_enabled: false, count: 2, hot_add_enabled: false, cores_per_socket: 1 },
            scsi_adapters: {},
            power_state: 'POWERED_ON',
            floppies: {},
            identity: { name: vm.name, instance_uuid: vm.instanceUuid, bios_uuid: vm.biosUuid },
            name: vm.name,
            nics: {},
            boot: { delay: 0, retry_delay: 10000, enter_setup_mode: false, type: 'BIOS', retry: false },
            serial_ports: {},
            boot_devices: [],
            guest_OS: 'UBUNTU_64',
            hardware: { upgrade_policy: 'NEVER', upgrade_status: 'NONE', version: 'VMX_19' },
          });
        }
        if (req.method === 'POST' && url.pathname === '/api/cis/tagging/tag-association' && url.searchParams.get('action') === 'list-attached-tags') {
          let body: { object_id?: { id?: string; type?: string } };
          try {
            body = JSON.parse(raw) as typeof body;
          } catch {
            return vapiError(400, 'INVALID_ARGUMENT', 'Invalid request body.', 'vapi.bindings.typeconverter.invalid');
          }
          if (body.object_id?.type !== 'VirtualMachine') return send(200, []);
          return send(200, this.#attached.get(body.object_id.id ?? '') ?? []);
        }
        const tagPath = /^\/api\/cis\/tagging\/tag\/([^/]+)$/.exec(url.pathname);
        if (req.method === 'GET' && tagPath) {
          const id = decodeURIComponent(tagPath[1]!);
          const tag = this.#tags.get(id);
          if (!tag) return vapiError(404, 'NOT_FOUND', 'Tag not found.', 'com.vmware.cis.tagging.objectNotFound');
          return send(200, { category_id: tag.categoryId, name: tag.name, description: '', id, used_by: [] });
        }
        const catPath = /^\/api\/cis\/tagging\/category\/([^/]+)$/.exec(url.pathname);
        if (req.method === 'GET' && catPath) {
          const id = decodeURIComponent(catPath[1]!);
          const name = this.#categories.get(id);
          if (!name) return vapiError(404, 'NOT_FOUND', 'Category not found.', 'com.vmware.cis.tagging.objectNotFound');
          return send(200, { name, cardinality: 'MULTIPLE', description: '', id, associable_types: ['VirtualMachine'], used_by: [] });
        }
        return vapiError(404, 'NOT_FOUND', 'Not found.', 'com.vmware.vapi.rest.httpNotFound');
      });
    });
  }

  static async start(tls: TestCert, username = 'ward@vsphere.local', password = 'secret-pw'): Promise<FakeVcenter> {
    const fake = new FakeVcenter(tls, username, password);
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `https://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  addVm(vm: FakeVm): void {
    this.#vms.set(vm.moid, vm);
    const ids: string[] = [];
    for (const [category, names] of Object.entries(vm.tags)) {
      let catId = [...this.#categories].find(([, n]) => n === category)?.[0];
      if (!catId) {
        catId = urn('Category');
        this.#categories.set(catId, category);
      }
      for (const name of names) {
        let tagId = [...this.#tags].find(([, t]) => t.name === name && t.categoryId === catId)?.[0];
        if (!tagId) {
          tagId = urn('Tag');
          this.#tags.set(tagId, { name, categoryId: catId });
        }
        ids.push(tagId);
      }
    }
    this.#attached.set(vm.moid, ids);
  }

  /** Drops every session (idle timeout), forcing clients to log in again. */
  expireSessions(): void {
    this.#sessions.clear();
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
