// A shop service process: `node shop-main.js <role>` (PORT, HOST, UPSTREAMS from the environment).
import { runShop } from './shop.js';

runShop(process.argv.slice(2), process.env);
