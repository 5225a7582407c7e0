/**
 * The control-plane flags of `ward agent` (`--server`, `--join-token`, …), declared apart from
 * control.ts so that registering the command does not load the control-plane client: static
 * mode never imports it (ADR 0044).
 */
import type { Command } from 'commander';
import type { ControlFlags } from '../../../agent/control/options.js';
import type { AgentFlags } from './options.js';

export function addControlOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'control-plane mode: the server\'s agent API (https://host:7401)')
    .option('--server-bundle <file>', 'the server\'s trust bundle (<data-dir>/bundle.pem)')
    .option('--trust-domain <td>', 'trust domain (default: read from the bundle)')
    .option('--join-token <token>', 'attest with this single-use join token (visible in ps: prefer --join-token-file)')
    .option('--join-token-file <file>', 'attest with the single-use join token this file holds (read once at start)')
    .option('--k8s-cluster <name>', 'attest with a projected service-account token (k8s_psat) for this cluster')
    .option('--k8s-token <file>', 'the projected token file (default /var/run/secrets/tokens/ward-agent)')
    .option('--service <name>', 'the service this agent fronts (entry selector ward:service:<name>)')
    .option('--spiffe-id <id>', 'the SPIFFE ID to serve (instead of --service)')
    .option('--app-port <port>', 'shorthand for --inbound port=8443,app=<port>,protocol=http')
    .option('--watch-idle-timeout <duration>', 'reconnect when the watch stream is silent this long (agent.yaml control.watchIdleTimeout; default 45s: 3 server heartbeats)');
}

export type ControlledFlags = AgentFlags & ControlFlags;
