// Valid sample events of every class, built with createEvent (shared by unit and fuzz tests).
import { ManualClock } from '../../../src/core/clock.js';
import { createEvent, type WardEvent } from '../../../src/events/index.js';

export const clock = new ManualClock('2026-03-01T12:00:00Z');
const workload = { spiffe_id: 'spiffe://prod.example/ns/shop/sa/orders' };

export function sampleEvents(): WardEvent[] {
  return [
    createEvent({
      class_uid: 4001, activity_id: 6, severity_id: 1, action_id: 2, workload,
      decision: { policy: 'shop/orders-inbound', rule: 'from-frontend', action: 'deny', mode: 'enforce' },
      src_endpoint: { ip: '10.0.0.7', port: 51234, spiffe_id: 'spiffe://prod.example/ns/shop/sa/frontend' },
      dst_endpoint: { ip: '10.0.0.9', port: 8443 },
      connection_info: { protocol_name: 'tcp', direction_id: 1 },
      traffic: { bytes_in: 1200, bytes_out: 5400 }, duration: 35, tls: { version: 'TLSv1.3', mtls: true },
    }, clock),
    createEvent({
      class_uid: 4002, activity_id: 6, severity_id: 1, workload,
      decision: { policy: 'shop/orders-api', rule: 'post-orders', action: 'allow', mode: 'dry-run', would_have: 'deny' },
      src_endpoint: { spiffe_id: 'spiffe://prod.example/ns/shop/sa/frontend' },
      dst_endpoint: { port: 8080, svc_name: 'orders' },
      http_request: { http_method: 'POST', url: { path: '/orders/42', path_template: '/orders/{id}' }, version: 'HTTP/2', user: { uid: 'alice', issuer: 'https://id.example' } },
      http_response: { code: 201, latency: 4 },
    }, clock),
    createEvent({
      class_uid: 1007, activity_id: 1, severity_id: 4, workload, uid: 'evt-3',
      process: { pid: 4242, name: 'sh', cmd_line: 'sh -c id', file: { path: '/bin/sh' }, user: { uid: 0 }, parent_process: { pid: 1, name: 'node' } },
      rule: { name: 'Terminal shell in container' },
      decision: { policy: 'shop/orders-runtime', action: 'deny', mode: 'enforce' },
    }, clock),
    createEvent({
      class_uid: 2004, activity_id: 1, severity_id: 5, workload,
      finding_info: { uid: 'inc-1', title: 'API anomaly then shell then new egress', analytic: { name: 'three-layer-chain', type: 'correlation' } },
      related_events: [{ uid: 'evt-3', class_uid: 1007 }],
      risk_score: 90,
    }, clock),
    createEvent({
      class_uid: 2002, activity_id: 1, severity_id: 5, workload,
      finding_info: { uid: 'scan-1', title: 'Image vulnerabilities' },
      resources: [{ type: 'container_image', uid: 'sha256:' + 'ab'.repeat(32) }],
      vulnerabilities: [{ cve: { uid: 'CVE-2024-3094', cvss: [{ base_score: 10, version: '3.1' }] }, severity: 'Critical', is_fix_available: true, affected_packages: [{ name: 'xz-utils', version: '5.6.0', fixed_in_version: '5.6.1' }] }],
    }, clock),
    createEvent({
      class_uid: 3003, activity_id: 99, severity_id: 1, status_id: 2, workload,
      actor: { spiffe_id: 'spiffe://prod.example/ns/shop/sa/frontend' },
      privileges: ['svid'],
      decision: { policy: '', action: 'deny', mode: 'enforce', reason: 'default deny' },
    }, clock),
  ];
}
