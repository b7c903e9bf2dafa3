// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// `hybridml certs --dir D [--name SAN ...] [--days N]`: writes a development CA, a server
// certificate for localhost (plus the --name SANs) and a client certificate for mutual TLS
// (src/server/tls/certs.h), for `hybridml serve --tls-cert D/server.pem --tls-key D/server.key
// [--tls-client-ca D/ca.pem]`. Never overwrites existing files.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "src/cli/commands.h"
#include "src/server/tls/certs.h"

namespace hml::cli {
namespace {

struct CertsFlags {
  std::string dir;
  server::CertOptions options;
};

int Certs(const CertsFlags& flags) {
  if (Status s = server::MakeDevCertificates(flags.dir, flags.options); !s.ok()) {
    std::fprintf(stderr, "hybridml certs: %s\n", s.ToString().c_str());
    return 1;
  }
  for (const char* file : server::kDevCertFiles) {
    std::printf("wrote %s/%s\n", flags.dir.c_str(), file);
  }
  std::printf(
      "serve with: --tls-cert %s/server.pem --tls-key %s/server.key "
      "[--tls-client-ca %s/ca.pem]\n",
      flags.dir.c_str(), flags.dir.c_str(), flags.dir.c_str());
  return 0;
}

}  // namespace

void AddCertsCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<CertsFlags>();
  auto* certs = app.add_subcommand(
      "certs", "Write a development CA, a localhost server certificate and a client certificate");
  certs->add_option("--dir", flags->dir, "Directory for the PEM files (created if missing)")
      ->required();
  certs->add_option("--name", flags->options.extra_names,
                    "Extra subjectAltName of the server certificate, DNS name or IP (repeatable)");
  certs->add_option("--days", flags->options.days, "Validity in days")->capture_default_str();
  certs->callback([flags, &exit_code] { exit_code = Certs(*flags); });
}

}  // namespace hml::cli
