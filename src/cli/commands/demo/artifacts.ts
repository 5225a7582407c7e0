/**
 * The shop's supply-chain documents, made the way real tools make them: a Trivy JSON report
 * (SchemaVersion 2) per image, and SLSA v1 provenance in an in-toto Statement v1 inside a DSSE
 * envelope signed with an ECDSA P-256 key the demo's server is configured to trust.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { preAuthEncoding } from '../../../platforms/provenance/dsse.js';

export const DEMO_REGISTRY = 'registry.shop.demo/shop';

/** A stable fake image digest per service (`sha256:<64 hex>`). */
export function imageDigest(service: string): string {
  return `sha256:${createHash('sha256').update(`ward-demo-image:${service}`).digest('hex')}`;
}

/** The critical finding the mid-run scan reports for orders (a real CVE: curl SOCKS5 heap overflow). */
const CRITICAL_FINDING = {
  VulnerabilityID: 'CVE-2023-38545',
  PkgName: 'curl',
  InstalledVersion: '7.88.1-10+deb12u3',
  FixedVersion: '7.88.1-10+deb12u4',
  Status: 'fixed',
  Severity: 'CRITICAL',
  Title: 'curl: heap buffer overflow in the SOCKS5 proxy handshake',
  PrimaryURL: 'https://avd.aquasec.com/nvd/cve-2023-38545',
  CVSS: { nvd: { V3Vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', V3Score: 9.8 } },
};

/** A Trivy report for a service's image: clean, or with one critical, fixable finding. */
export function trivyReport(service: string, critical: boolean): string {
  const digest = imageDigest(service);
  return JSON.stringify({
    SchemaVersion: 2,
    CreatedAt: '2026-11-24T00:00:00.000000000Z',
    ArtifactName: `${DEMO_REGISTRY}/${service}:1.0.0`,
    ArtifactType: 'container_image',
    Metadata: {
      OS: { Family: 'debian', Name: '12.5' },
      ImageID: `sha256:${createHash('sha256').update(`config:${service}`).digest('hex')}`,
      RepoTags: [`${DEMO_REGISTRY}/${service}:1.0.0`],
      RepoDigests: [`${DEMO_REGISTRY}/${service}@${digest}`],
    },
    Results: [
      { Target: `${DEMO_REGISTRY}/${service}:1.0.0 (debian 12.5)`, Class: 'os-pkgs', Type: 'debian', ...(critical ? { Vulnerabilities: [CRITICAL_FINDING] } : {}) },
      { Target: 'app/package-lock.json', Class: 'lang-pkgs', Type: 'npm' },
    ],
  });
}

export interface ProvenanceSigner {
  readonly publicKeyPem: string;
  envelope(service: string): unknown;
}

/** A signing key for the demo's builder and a function producing signed provenance per image. */
export function provenanceSigner(): ProvenanceSigner {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    envelope: (service) => signedProvenance(service, privateKey),
  };
}

function signedProvenance(service: string, key: KeyObject): unknown {
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: `${DEMO_REGISTRY}/${service}`, digest: { sha256: imageDigest(service).slice('sha256:'.length) } }],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {
      buildDefinition: {
        buildType: 'https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1',
        externalParameters: { workflow: { ref: 'refs/heads/main', repository: 'https://github.com/acme/shop', path: `.github/workflows/${service}.yml` } },
        resolvedDependencies: [{ uri: 'git+https://github.com/acme/shop@refs/heads/main', digest: { gitCommit: createHash('sha1').update(service).digest('hex') } }],
      },
      runDetails: { builder: { id: 'https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0' } },
    },
  };
  const payloadType = 'application/vnd.in-toto+json';
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  const sig = sign('sha256', preAuthEncoding(payloadType, payload), key);
  return { payloadType, payload: payload.toString('base64'), signatures: [{ keyid: 'ward-demo-builder', sig: sig.toString('base64') }] };
}
