// Package auth is Sluice's identity: a cluster CA and the certificates it
// issues (standard crypto/x509, ECDSA P-256, no external PKI), the identity
// a certificate carries, the TLS configurations of the brain and its
// clients with certificates reloaded from disk at every handshake, and
// host revocations.
//
// A certificate says who it is in a URI SAN:
//
//	sluice://host/<name>     an agent; it may speak only for host <name>
//	                         (its CN and DNS SAN are <name> too)
//	sluice://scope/<scope>   an operator (CN = the operator's name) with
//	                         scope read, submit or admin; each scope
//	                         includes the ones before it
//	sluice://brain/<name>    a brain's serving certificate (the only kind
//	                         with the server-auth key usage)
//
// A certificate carrying more than one of these, or none, has no identity
// and is refused.
//
// Files in a certificate directory: ca.crt, ca.key (the CA's key, kept by
// whoever issues), and <name>.crt / <name>.key per issued certificate.
package auth
