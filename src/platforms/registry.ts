/**
 * The catalog of built-in attestors and the registry the server builds from configuration.
 * Adding an attestor: a folder under src/platforms/, one line in BUILTIN_ATTESTORS, one section
 * in docs/reference/attestors.md, and a test file that runs the shared contract suite.
 */
import { configError, deepFreeze } from '../core/config.js';
import type { AttestContext, AttestationResult, Attestor, AttestorKind, AttestorName } from './attestor.js';
import { PlatformError } from './errors.js';
import { isPlainObject, parseEnvelope } from './evidence.js';
import { JoinTokenAttestor } from './join-token/attestor.js';
import { createK8sPsatAttestor } from './kubernetes/attestor.js';
import { createAwsIidAttestor } from './aws/attestor.js';
import { createEcsAttestor } from './ecs/attestor.js';
import { createVsphereAttestor } from './vsphere/attestor.js';
import { createHostAttestor } from './host/attestor.js';
import { createX509PopAttestor } from './x509pop/attestor.js';

export interface AttestorPlugin {
  readonly name: AttestorName;
  readonly kind: AttestorKind;
  /** Validates `config` (throws ERR_CONFIG_INVALID naming `path`) and builds the attestor. */
  create(config: unknown, path: string): Attestor;
}

export const BUILTIN_ATTESTORS: Readonly<Record<AttestorName, AttestorPlugin>> = deepFreeze({
  join_token: {
    name: 'join_token',
    kind: 'node',
    create: (config: unknown, path: string) => {
      if (config !== undefined && config !== null && !(isPlainObject(config) && Object.keys(config).length === 0)) {
        throw configError(path, 'join_token takes no options');
      }
      return new JoinTokenAttestor();
    },
  },
  x509pop: { name: 'x509pop', kind: 'node', create: createX509PopAttestor },
  k8s_psat: { name: 'k8s_psat', kind: 'node', create: createK8sPsatAttestor },
  aws_iid: { name: 'aws_iid', kind: 'node', create: createAwsIidAttestor },
  ecs: { name: 'ecs', kind: 'workload', create: createEcsAttestor },
  vsphere: { name: 'vsphere', kind: 'workload', create: createVsphereAttestor },
  host: { name: 'host', kind: 'workload', create: createHostAttestor },
} satisfies Record<AttestorName, AttestorPlugin>);

/** The attestors one server has configured, by name. */
export class AttestorRegistry {
  readonly #byName: ReadonlyMap<string, Attestor>;

  constructor(attestors: readonly Attestor[]) {
    const map = new Map<string, Attestor>();
    for (const a of attestors) {
      if (map.has(a.name)) throw new Error(`attestor ${a.name} registered twice`);
      map.set(a.name, a);
    }
    this.#byName = map;
  }

  names(): readonly string[] {
    return [...this.#byName.keys()].sort();
  }

  get(name: string): Attestor | undefined {
    return this.#byName.get(name);
  }

  /**
   * Dispatches a wire envelope `{ attestor, data }` to its attestor. Node evidence must not carry
   * `ctx.node`; workload evidence needs it (the attestor checks).
   */
  async attest(envelope: unknown, ctx: AttestContext): Promise<AttestationResult> {
    const { attestor: name, data } = parseEnvelope(envelope);
    const attestor = this.#byName.get(name);
    if (attestor === undefined) {
      throw new PlatformError('ERR_ATTEST_UNKNOWN_ATTESTOR', `attestor ${name} is not configured`, { details: { attestor: name } });
    }
    return attestor.attest(data, ctx);
  }
}

/**
 * Builds the registry from the `attestors:` section of the server configuration: an object
 * mapping attestor name to its options.
 *
 * @example createAttestorRegistry({ join_token: {}, aws_iid: { certificates: [pem] } })
 */
export function createAttestorRegistry(config: unknown, path = 'attestors'): AttestorRegistry {
  if (!isPlainObject(config)) throw configError(path, 'expected a map of attestor name to options');
  const attestors: Attestor[] = [];
  for (const [name, options] of Object.entries(config)) {
    const plugin = (BUILTIN_ATTESTORS as Readonly<Record<string, AttestorPlugin>>)[name];
    if (plugin === undefined || !Object.hasOwn(BUILTIN_ATTESTORS, name)) {
      throw configError(`${path}.${name}`, `unknown attestor; built-ins are ${Object.keys(BUILTIN_ATTESTORS).join(', ')}`);
    }
    attestors.push(plugin.create(options, `${path}.${name}`));
  }
  return new AttestorRegistry(attestors);
}
