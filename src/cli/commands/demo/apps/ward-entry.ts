// The `ward` CLI as a child process of the demo (from src with tsx, or from dist): the agents.
import { main } from '../../../main.js';

process.exitCode = await main(process.argv.slice(2));
