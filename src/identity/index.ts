/** The identity layer: workload identity documents, attributes and attribute selectors. */
export * from './attributes.js';
export * from './errors.js';
export * from './selector.js';
export * from './workload.js';
