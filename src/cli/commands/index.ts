/**
 * Every top-level command noun, one registrar each (`commands/<noun>/index.ts` registers its
 * verbs). Add a line here when adding a noun.
 */
import type { CommandRegistrar } from '../context.js';

export const commandRegistrars: readonly CommandRegistrar[] = [];
