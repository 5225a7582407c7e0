/**
 * Every top-level command noun, one registrar each (`commands/<noun>/index.ts` registers its
 * verbs). Add a line here when adding a noun.
 */
import type { CommandRegistrar } from '../context.js';
import { registerSpiffeId } from './spiffe-id/index.js';
import { registerCa } from './ca/index.js';
import { registerSvid } from './svid/index.js';
import { registerJwtSvid } from './jwt-svid/index.js';
import { registerPolicy } from './policy/index.js';
import { registerExplain } from './explain/index.js';
import { registerAgent } from './agent/index.js';

export const commandRegistrars: readonly CommandRegistrar[] = [
  registerSpiffeId,
  registerCa,
  registerSvid,
  registerJwtSvid,
  registerPolicy,
  registerExplain,
  registerAgent,
];
