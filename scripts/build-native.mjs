#!/usr/bin/env node
// Builds the native L4 relay (native/relay, binding.gyp) with node-gyp against this Node's own
// headers and OpenSSL (ADR 0049). Runs on `npm install`. If the build cannot run here the agent
// still works on the Node data plane, so this only warns — unless WARD_REQUIRE_NATIVE=1 (CI),
// where a broken native build must fail loudly.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const required = process.env.WARD_REQUIRE_NATIVE === '1';

function fail(message) {
  if (required) {
    console.error(`build-native: ${message}`);
    process.exit(1);
  }
  console.warn(`build-native: ${message}; the agent will use the Node data plane for L4`);
  process.exit(0);
}

if (process.platform !== 'linux') fail('the native relay is built for Linux only');

function findNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const candidates = [join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not a dependency; npm's bundled copy is the usual one
  }
  return candidates.find((p) => existsSync(p));
}

const gyp = findNodeGyp();
if (gyp === undefined) fail('node-gyp not found');
// Headers of the running Node (Debian/nodesource install them under <prefix>/include/node); no download.
const prefix = join(dirname(process.execPath), '..');
const nodedir = process.env.npm_config_nodedir ?? (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
const args = [gyp, 'rebuild', ...(nodedir === undefined ? [] : [`--nodedir=${nodedir}`])];
const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, npm_config_loglevel: 'warn' } });
if (r.status !== 0) fail(`node-gyp failed (exit ${r.status ?? r.signal})`);
console.log('build-native: build/Release/ward_relay.node built');
