/**
 * Error codes of the PKI layer: CSR checks, the CA and its rotation, X.509-SVID and JWT-SVID
 * verification (one code per X509-SVID spec rule), trust bundles and sealed keys.
 */
import { WardError, defineErrorCodes, type CodeOf } from '../core/errors.js';

export const PKI_ERRORS = defineErrorCodes('pki', {
  // certificates and chains (X509-SVID spec, section 5 and RFC 5280)
  ERR_CERT_MALFORMED: 'A certificate is not valid DER/PEM X.509 v3, or uses an unsupported signature algorithm.',
  ERR_SVID_CHAIN_EMPTY: 'No certificate was presented.',
  ERR_SVID_LEAF_IS_CA: 'The leaf has the CA flag set (X509-SVID 4.1: leaves must have cA=false).',
  ERR_SVID_LEAF_KEY_CERT_SIGN: 'The leaf key usage has keyCertSign or cRLSign (X509-SVID 4.3).',
  ERR_SVID_LEAF_NO_DIGITAL_SIGNATURE: 'The leaf key usage lacks digitalSignature, or there is no key usage extension (X509-SVID 4.3).',
  ERR_SVID_URI_SAN_COUNT: 'The leaf carries zero or several URI SANs; an X509-SVID has exactly one (X509-SVID 2).',
  ERR_SVID_URI_NOT_SPIFFE: 'The leaf URI SAN is not a valid SPIFFE ID; `details.spiffeCode` names the rule.',
  ERR_SVID_UNTRUSTED: 'The chain does not lead to an authority of the trust bundle (unknown issuer or bad signature).',
  ERR_SVID_INTERMEDIATE_NOT_CA: 'A signing certificate in the chain lacks the CA flag (X509-SVID 4.1).',
  ERR_SVID_INTERMEDIATE_NO_KEY_CERT_SIGN: 'A signing certificate in the chain lacks keyCertSign (X509-SVID 4.3).',
  ERR_SVID_PATH_LENGTH: 'The chain is longer than a pathLenConstraint allows, or than 8 certificates.',
  ERR_SVID_EXPIRED: 'A certificate of the chain is past its notAfter at the verification time.',
  ERR_SVID_NOT_YET_VALID: 'A certificate of the chain is before its notBefore at the verification time.',
  ERR_SVID_WRONG_TRUST_DOMAIN: 'The SPIFFE ID belongs to another trust domain than the one required.',
  ERR_SVID_UNKNOWN_CRITICAL_EXTENSION: 'A certificate carries a critical extension Ward does not process (fail closed, RFC 5280 4.2).',
  ERR_SVID_KEY_IDENTIFIER_MISSING: 'A certificate of the path lacks the authority key identifier (every non-self-issued certificate) or a signing certificate lacks its subject key identifier (RFC 5280 4.2.1.1-2, as `openssl verify -x509_strict` requires).',
  // CSRs
  ERR_CSR_MALFORMED: 'The CSR is not valid DER/PEM PKCS#10.',
  ERR_CSR_SIGNATURE: 'The CSR signature does not verify with its own public key.',
  ERR_CSR_KEY_UNSUPPORTED: 'The CSR public key is not ECDSA P-256/P-384, RSA >= 2048 or Ed25519.',
  ERR_CSR_FORBIDDEN_NAME: 'The CSR asks for a DNS, IP, email or other name, or a subject CN; only one SPIFFE ID URI SAN is allowed.',
  ERR_CSR_SPIFFE_ID_MISMATCH: 'The CSR carries no URI SAN, several, or a SPIFFE ID other than the authorised one.',
  ERR_SVID_TTL_INVALID: 'The requested SVID TTL is not positive or exceeds the maximum.',
  // CA
  ERR_CA_STATE_INVALID: 'The CA state (ca.json or a database row) is unreadable or inconsistent.',
  ERR_CA_EXISTS: 'A CA already exists in the target directory.',
  ERR_CA_NOT_FOUND: 'No CA state was found in the directory.',
  ERR_CA_LOCKED: 'Another live process holds the CA directory lock (`ca.lock`); retry when it is done.',
  ERR_CA_NO_ACTIVE_AUTHORITY: 'The CA has no active, unexpired signing authority.',
  ERR_CA_ALREADY_PREPARED: 'A prepared authority exists already; activate it first.',
  ERR_CA_NOTHING_PREPARED: 'There is no prepared authority to activate; run `ca rotate prepare` first.',
  ERR_CA_AUTHORITY_UNKNOWN: 'No authority has the given id.',
  ERR_CA_TAINT_ACTIVE: 'The active authority cannot be tainted; prepare and activate a new one first.',
  ERR_CA_REVOKE_NOT_TAINTED: 'Only a tainted authority can be revoked (taint, let workloads rotate, then revoke).',
  ERR_CA_REVOKE_UPSTREAM: 'With an upstream CA the bundle holds the upstream root; revoke the intermediate at the upstream CA.',
  ERR_CA_UPSTREAM_INVALID: 'The upstream certificate/key pair is unusable (not a CA, mismatched, unsupported key, expired).',
  // keys and master keys
  ERR_KEY_SEALED_INVALID: 'A sealed key failed to open: wrong master key or tampered ciphertext.',
  ERR_MASTER_KEY_MISSING: 'The master key provider found no key (unset WARD_MASTER_KEY, missing key file).',
  ERR_MASTER_KEY_INVALID: 'The master key is not 32 bytes of base64 or hex.',
  ERR_MASTER_KEY_PERMISSIONS: 'The master key file is readable by group or others; it must be mode 0600.',
  ERR_MASTER_KEY_MISMATCH: 'The state was sealed under a different master key (key id mismatch).',
  ERR_KEY_PROVIDER_UNKNOWN: 'No master key provider has the requested name.',
  ERR_KEY_INVALID: 'A private key could not be read or is of an unsupported type.',
  // bundles
  ERR_BUNDLE_MALFORMED: 'The trust bundle is neither PEM certificates nor a SPIFFE bundle JWKS, or is invalid.',
  ERR_BUNDLE_EMPTY: 'The trust bundle holds no X.509 authority.',
  // JWT-SVIDs
  ERR_JWT_SVID_MALFORMED: 'The token is not a compact JWS with a JSON header and claims.',
  ERR_JWT_SVID_ALGORITHM: 'The token algorithm is not ES256, RS256 or PS256 (`none` and HMAC are always rejected).',
  ERR_JWT_SVID_KID_UNKNOWN: 'The token has no `kid` or one no JWT authority of the bundle carries.',
  ERR_JWT_SVID_SIGNATURE: 'The token signature does not verify.',
  ERR_JWT_SVID_EXPIRED: 'The token is past its `exp`.',
  ERR_JWT_SVID_CLAIMS: 'A required claim (`sub`, `aud`, `exp`) is missing or mistyped, or `sub` is not a SPIFFE ID.',
  ERR_JWT_SVID_AUDIENCE: 'The token audience does not include the expected audience.',
  ERR_JWT_SVID_WRONG_TRUST_DOMAIN: 'The token subject belongs to another trust domain than the bundle.',
});

export type PkiErrorCode = CodeOf<typeof PKI_ERRORS>;

export class PkiError extends WardError<PkiErrorCode> {
  override readonly name = 'PkiError';
}
