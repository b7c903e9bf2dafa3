// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Development TLS material for `hybridml serve` (issue 5: "TLS on both ports from PEM files,
// `hybridml certs` makes a dev CA + server cert"): a self-signed CA, a server certificate for
// localhost signed by it, and a client certificate for mutual TLS. Keys are ECDSA P-256, which
// every TLS client supports; certificates are X.509 v3 signed with SHA-256. For development and
// tests only: a production deployment brings its own CA.
//
// All OpenSSL errors are translated into Status in one place (certs.cc), with the name of the
// object being built or read and OpenSSL's reason strings.
#ifndef HML_SRC_SERVER_TLS_CERTS_H_
#define HML_SRC_SERVER_TLS_CERTS_H_

#include <string>
#include <vector>

#include "hml/status.h"

namespace hml::server {

struct CertOptions {
  // Days every certificate stays valid, starting now. Default: 365.
  int days = 365;
  // Extra subjectAltNames of the server certificate, besides DNS:localhost and IP:127.0.0.1:
  // IPv4/IPv6 literals become IP entries, everything else DNS entries (letters, digits, '.', '-',
  // '*' only). Default: none.
  std::vector<std::string> extra_names;

  // kInvalidArgument naming the field (days not in [1, 36500], a malformed name).
  Status Validate() const;
};

// The files MakeDevCertificates writes into its directory.
inline constexpr const char* kDevCertFiles[] = {"ca.pem",     "ca.key",     "server.pem",
                                                "server.key", "client.pem", "client.key"};

// Writes ca.pem/ca.key (self-signed CA, basicConstraints CA:TRUE), server.pem/server.key
// (signed by the CA; SANs DNS:localhost, IP:127.0.0.1 and options.extra_names; extendedKeyUsage
// serverAuth) and client.pem/client.key (signed by the CA; extendedKeyUsage clientAuth) into
// `dir`, creating it when missing. Keys are unencrypted PKCS#8 PEM with mode 0600, certificates
// 0644. Refuses to overwrite: kAlreadyExists naming the first file that exists, before anything
// is written. kInvalidArgument for bad options; OpenSSL failures are kInternal.
Status MakeDevCertificates(const std::string& dir, const CertOptions& options);

// Checks that `cert_file` holds a PEM certificate, `key_file` a PEM private key matching it, and
// (when not empty) `ca_file` at least one PEM certificate. kInvalidArgument naming the file and
// OpenSSL's reason; kNotFound when a file does not exist. Used before handing the paths to a TLS
// server, whose own loader only says "failed".
Status CheckPemFiles(const std::string& cert_file, const std::string& key_file,
                     const std::string& ca_file);

}  // namespace hml::server

#endif  // HML_SRC_SERVER_TLS_CERTS_H_
