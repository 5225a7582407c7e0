/**
 * Every top-level command noun and how to load it. Loading is lazy: `ward svid verify` imports
 * only the `svid` commands, so a short command (or the agent) does not pay for the server's
 * dependencies in start-up time and memory. Add a line here when adding a noun.
 */
import type { CommandRegistrar } from '../context.js';

export const commandLoaders: Readonly<Record<string, () => Promise<CommandRegistrar>>> = {
  'spiffe-id': async () => (await import('./spiffe-id/index.js')).registerSpiffeId,
  ca: async () => (await import('./ca/index.js')).registerCa,
  svid: async () => (await import('./svid/index.js')).registerSvid,
  'jwt-svid': async () => (await import('./jwt-svid/index.js')).registerJwtSvid,
  policy: async () => (await import('./policy/index.js')).registerPolicy,
  explain: async () => (await import('./explain/index.js')).registerExplain,
  agent: async () => (await import('./agent/index.js')).registerAgent,
  server: async () => (await import('./server/index.js')).registerServer,
  get: async () => (await import('./get/index.js')).registerGet,
  apply: async () => (await import('./apply/index.js')).registerApply,
  delete: async () => (await import('./delete/index.js')).registerDelete,
  token: async () => (await import('./token/index.js')).registerToken,
  scan: async () => (await import('./scan/index.js')).registerScan,
  demo: async () => (await import('./demo/index.js')).registerDemo,
};
