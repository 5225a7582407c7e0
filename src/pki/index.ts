/**
 * The PKI layer's public API. Other layers import from here (or a named module), never from
 * internals such as der.ts.
 */
export { PKI_ERRORS, PkiError, type PkiErrorCode } from './errors.js';
export { generateP256KeyPair, loadPrivateKey, privateKeyToPem, spkiOf, type KeyPair } from './keys.js';
export { createSvidCsr, checkSvidCsr, type SvidCsr, type CheckedCsr } from './csr.js';
export { KeySealer, masterKeyId, MASTER_KEY_BYTES, type SealedBox } from './envelope.js';
export { CertificateAuthority, CA_DEFAULTS, type CaOptions, type CaState, type AuthorityRecord, type AuthorityState, type AuthoritySummary, type X509Signer, type JwtSigner } from './ca.js';
export { createTrustBundle, parseTrustBundle, bundleToPem, bundleToJwks, type TrustBundle, type X509Authority, type JwtAuthority, type SpiffeBundleJwks } from './bundle.js';
export { issueX509Svid, SVID_BACKDATE_MS, type IssueX509SvidOptions, type IssuedX509Svid } from './svid-issue.js';
export { verifyX509Svid, peerCertificateChain, MAX_CHAIN_LENGTH, type PeerCertificateLike, type VerifyX509SvidOptions, type VerifiedX509Svid, type X509ChainInput } from './svid-verify.js';
export { mintJwtSvid, verifyJwtSvid, JWT_SVID_ALGORITHMS, JWT_SVID_DEFAULT_TTL_MS, type MintJwtSvidOptions, type VerifyJwtSvidOptions, type VerifiedJwtSvid } from './jwt-svid.js';
export { parseCertificate, parseCertificates, type ParsedCertificate } from './certificate.js';
export { certToPem, pemBlocks } from './pem.js';
