/** The event model: OCSF-aligned event classes, the agent batch envelope and its strict codec. */
export * from './types.js';
export * from './codec.js';
export { pathTemplate } from './path-template.js';
export { EVENT_ERRORS, EventError, type EventErrorCode } from './errors.js';
