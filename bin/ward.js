#!/usr/bin/env node
// The deployable is one line: all logic lives in src/ (compiled to dist/ by `npm install`).
import { main } from '../dist/cli/main.js';
process.exitCode = await main(process.argv.slice(2));
