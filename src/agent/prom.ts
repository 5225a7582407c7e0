/**
 * The four prom-client classes the agent uses, loaded from their own modules. prom-client's
 * index also loads its default process metrics (and with them @opentelemetry/api), Summary,
 * Pushgateway and the cluster aggregator: ≈ 11 MB of RSS in an agent that uses none of them
 * (measured: bare node 39.5 MB, `require('prom-client')` 51.8 MB, these four 40.4 MB; ADR 0044).
 * The classes are the same ones the index exports (one module instance per file), so
 * `AggregatorRegistry` (cluster mode, which imports the index) works with these registries.
 * prom-client is pinned to ^15 in package.json; its files are CommonJS with these exports.
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const load = createRequire(import.meta.url);

export const Registry = load('prom-client/lib/registry') as typeof PromClient.Registry;
export const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter;
export const Gauge = load('prom-client/lib/gauge') as typeof PromClient.Gauge;
export const Histogram = load('prom-client/lib/histogram') as typeof PromClient.Histogram;
export type Registry = PromClient.Registry;
