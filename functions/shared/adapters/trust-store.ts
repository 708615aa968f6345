/**
 * The certificates a delivery trusts: Node's default roots, plus extra CA certificates such as a
 * local receiver's. Passing `ca` to TLS replaces the default store, so the defaults are added back.
 */
import { readFileSync } from "node:fs";
import tls, { type SecureContext } from "node:tls";

/** Trusts the default roots plus the given PEM certificates; built once per client. */
export function secureContextTrusting(ca: string | readonly string[]): SecureContext {
  const extra = typeof ca === "string" ? [ca] : [...ca];
  return tls.createSecureContext({ ca: [...defaultCertificates(), ...extra] });
}

/** The default store as Node builds it: the bundled roots plus NODE_EXTRA_CA_CERTS. */
function defaultCertificates(): string[] {
  const getCACertificates = (tls as { getCACertificates?: (type: "default") => string[] })
    .getCACertificates;
  return getCACertificates ? getCACertificates("default") : fallbackDefaults();
}

/** Before Node 22.15 the default store is not readable: rebuild it from its two sources. */
function fallbackDefaults(): string[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return [...tls.rootCertificates];
  try {
    return [...tls.rootCertificates, readFileSync(file, "utf8")];
  } catch {
    return [...tls.rootCertificates];
  }
}
