/** The keystore: master-key providers and the CA directory (the only I/O of the PKI layer). */
export { type MasterKeyProvider, type MasterKeyProviderOptions, decodeMasterKey } from './provider.js';
export { MASTER_KEY_PROVIDERS, createMasterKeyProvider, type MasterKeyProviderFactory } from './registry.js';
export { MASTER_KEY_ENV } from './env/env-provider.js';
export { CA_STATE_FILE, BUNDLE_PEM_FILE, BUNDLE_JWKS_FILE, DEFAULT_MASTER_KEY_FILE, LOCK_FILE, caExists, openCaDir, readCaState, saveCaDir, withCaDirLock, writeFileAtomic } from './ca-dir.js';
