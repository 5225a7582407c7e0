/**
 * A minimal vSphere Automation REST client (vSphere 7+ `/api` paths): session login, VM lookup
 * by name, VM identity (BIOS UUID), and the CIS tagging API (attached tags, tag, category).
 */
import { PlatformError } from '../errors.js';
import { expectStatus, invalidResponse, jsonBody, platformRequest, type PlatformResponse } from '../http.js';
import { isPlainObject } from '../evidence.js';

export interface VcenterOptions {
  readonly url: string;
  readonly username: string;
  readonly password: string;
  readonly ca?: string;
  readonly timeoutMs?: number;
}

export interface VmTag {
  readonly category: string;
  readonly name: string;
}

export interface VmFacts {
  /** Managed object id, e.g. `vm-42`. */
  readonly moid: string;
  readonly name: string;
  readonly biosUuid: string;
  readonly instanceUuid: string | undefined;
  readonly tags: readonly VmTag[];
}

const str = (v: unknown, what: string, path: string): string => {
  if (typeof v !== 'string' || v.length === 0 || v.length > 1024) throw invalidResponse(what, path);
  return v;
};

export class VcenterClient {
  readonly #o: VcenterOptions;
  #session: string | undefined;

  constructor(options: VcenterOptions) {
    this.#o = options;
  }

  async #login(signal?: AbortSignal): Promise<string> {
    const auth = Buffer.from(`${this.#o.username}:${this.#o.password}`, 'utf8').toString('base64');
    const res = expectStatus(await platformRequest({ url: `${this.#o.url}/api/session`, method: 'POST', headers: { authorization: `Basic ${auth}` }, ...this.#common(signal) }), 'vCenter login', [200, 201]);
    const token = jsonBody(res, 'vCenter login');
    this.#session = str(token, 'vCenter login', 'session');
    return this.#session;
  }

  #common(signal?: AbortSignal): { ca?: string; timeoutMs: number; maxBodyBytes: number; signal?: AbortSignal } {
    return { ...(this.#o.ca ? { ca: this.#o.ca } : {}), timeoutMs: this.#o.timeoutMs ?? 10_000, maxBodyBytes: 1024 * 1024, ...(signal ? { signal } : {}) };
  }

  /** An authenticated call; one re-login on 401 (sessions expire after idle time). */
  async #call(method: 'GET' | 'POST', path: string, body: unknown, signal?: AbortSignal): Promise<PlatformResponse> {
    for (let attempt = 0; ; attempt++) {
      const session = this.#session ?? (await this.#login(signal));
      const res = await platformRequest({
        url: `${this.#o.url}${path}`,
        method,
        headers: { 'vmware-api-session-id': session, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...this.#common(signal),
      });
      if (res.status === 401 && attempt === 0) {
        this.#session = undefined;
        continue;
      }
      return res;
    }
  }

  /** VMs whose name is exactly `name` (the list endpoint's `names` filter). */
  async findVmsByName(name: string, signal?: AbortSignal): Promise<{ moid: string; name: string }[]> {
    const res = expectStatus(await this.#call('GET', `/api/vcenter/vm?names=${encodeURIComponent(name)}`, undefined, signal), 'vCenter list VMs');
    const list = jsonBody(res, 'vCenter list VMs');
    if (!Array.isArray(list) || list.length > 1000) throw invalidResponse('vCenter list VMs', '$');
    return list.map((item, i) => {
      if (!isPlainObject(item)) throw invalidResponse('vCenter list VMs', `[${i}]`);
      return { moid: str(item.vm, 'vCenter list VMs', `[${i}].vm`), name: str(item.name, 'vCenter list VMs', `[${i}].name`) };
    });
  }

  /** Full facts for one VM: identity and tags with their categories. */
  async describeVm(moid: string, signal?: AbortSignal): Promise<VmFacts> {
    const what = 'vCenter get VM';
    const res = await this.#call('GET', `/api/vcenter/vm/${encodeURIComponent(moid)}`, undefined, signal);
    if (res.status === 404) throw new PlatformError('ERR_PLATFORM_HTTP_STATUS', `${what}: not found`, { details: { status: 404 } });
    const vm = jsonBody(expectStatus(res, what), what);
    if (!isPlainObject(vm) || !isPlainObject(vm.identity)) throw invalidResponse(what, 'identity');
    const biosUuid = str(vm.identity.bios_uuid, what, 'identity.bios_uuid').toLowerCase();
    const instanceUuid = typeof vm.identity.instance_uuid === 'string' ? vm.identity.instance_uuid.toLowerCase() : undefined;
    const name = str(vm.name ?? vm.identity.name, what, 'name');

    const tagsWhat = 'vCenter list attached tags';
    const ids = jsonBody(expectStatus(await this.#call('POST', '/api/cis/tagging/tag-association?action=list-attached-tags', { object_id: { type: 'VirtualMachine', id: moid } }, signal), tagsWhat), tagsWhat);
    if (!Array.isArray(ids) || ids.length > 256) throw invalidResponse(tagsWhat, '$');
    const categories = new Map<string, string>();
    const tags: VmTag[] = [];
    for (const id of ids) {
      const tagId = str(id, tagsWhat, '[]');
      const tag = jsonBody(expectStatus(await this.#call('GET', `/api/cis/tagging/tag/${encodeURIComponent(tagId)}`, undefined, signal), 'vCenter get tag'), 'vCenter get tag');
      if (!isPlainObject(tag)) throw invalidResponse('vCenter get tag', '$');
      const categoryId = str(tag.category_id, 'vCenter get tag', 'category_id');
      let category = categories.get(categoryId);
      if (category === undefined) {
        const cat = jsonBody(expectStatus(await this.#call('GET', `/api/cis/tagging/category/${encodeURIComponent(categoryId)}`, undefined, signal), 'vCenter get category'), 'vCenter get category');
        if (!isPlainObject(cat)) throw invalidResponse('vCenter get category', '$');
        category = str(cat.name, 'vCenter get category', 'name');
        categories.set(categoryId, category);
      }
      tags.push({ category, name: str(tag.name, 'vCenter get tag', 'name') });
    }
    return { moid, name, biosUuid, instanceUuid, tags };
  }
}
