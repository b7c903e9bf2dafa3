// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/tls/certs.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string_view>

#include "src/base/errno_status.h"
#include "src/base/file_util.h"

namespace hml::server {
namespace {

// Owning pointers for the OpenSSL objects used here.
struct OpenSslFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree>;
using X509Ptr = std::unique_ptr<X509, OpenSslFree>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslFree>;
using BioPtr = std::unique_ptr<BIO, OpenSslFree>;

// The one translation of OpenSSL's error queue into a Status: "<context>: <reason>; <reason>".
// Drains the queue so that a later failure does not report this one's reasons.
Status OpenSslStatus(StatusCode code, std::string_view context) {
  std::string message(context);
  bool first = true;
  for (unsigned long err = ERR_get_error(); err != 0; err = ERR_get_error()) {
    char reason[256];
    ERR_error_string_n(err, reason, sizeof(reason));
    message += first ? ": " : "; ";
    message += reason;
    first = false;
  }
  if (first) message += ": unknown OpenSSL error";
  return Status(code, message);
}

// The certificate roles MakeDevCertificates issues.
enum class Role { kCa, kServer, kClient };

Result<PKeyPtr> NewP256Key(std::string_view name) {
  PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) {
    return OpenSslStatus(StatusCode::kInternal, std::string(name) + ": P-256 key generation");
  }
  return key;
}

// Adds the extension `nid` with OpenSSL's config-syntax `value` to `cert`; `issuer` is the
// certificate whose key identifier the authorityKeyIdentifier copies.
Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value,
                    std::string_view name) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslStatus(StatusCode::kInternal,
                         std::string(name) + ": extension " + OBJ_nid2sn(nid) + " '" + value + "'");
  }
  return Status::Ok();
}

// "DNS:localhost,IP:127.0.0.1,..." for the server certificate.
std::string ServerAltNames(const CertOptions& options) {
  std::string names = "DNS:localhost,IP:127.0.0.1";
  for (const std::string& name : options.extra_names) {
    unsigned char addr[16];
    const bool is_ip =
        inet_pton(AF_INET, name.c_str(), addr) == 1 || inet_pton(AF_INET6, name.c_str(), addr) == 1;
    names += (is_ip ? ",IP:" : ",DNS:") + name;
  }
  return names;
}

// Issues the certificate for `key` in `role`, signed by `issuer_key` (and named after
// `issuer`; null for the self-signed CA).
Result<X509Ptr> IssueCertificate(Role role, const std::string& common_name, EVP_PKEY* key,
                                 X509* issuer, EVP_PKEY* issuer_key, const CertOptions& options) {
  const std::string what = "certificate '" + common_name + "'";
  X509Ptr cert(X509_new());
  if (cert == nullptr) return OpenSslStatus(StatusCode::kInternal, what + ": X509_new");
  // A random positive 63-bit serial: unique enough for certificates nobody revokes.
  uint64_t serial = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof(serial)) != 1) {
    return OpenSslStatus(StatusCode::kInternal, what + ": random serial");
  }
  serial = (serial >> 1) | 1;
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), options.days, 0, nullptr) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1 ||
      X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("hybridml dev"), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(),
                           issuer != nullptr ? X509_get_subject_name(issuer) : subject) != 1) {
    return OpenSslStatus(StatusCode::kInternal, what + ": fields");
  }
  X509* signer = issuer != nullptr ? issuer : cert.get();
  HML_RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash", what));
  HML_RETURN_IF_ERROR(
      AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always", what));
  switch (role) {
    case Role::kCa:
      HML_RETURN_IF_ERROR(
          AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE", what));
      HML_RETURN_IF_ERROR(
          AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign", what));
      break;
    case Role::kServer:
    case Role::kClient:
      HML_RETURN_IF_ERROR(
          AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE", what));
      HML_RETURN_IF_ERROR(
          AddExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature", what));
      HML_RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_ext_key_usage,
                                       role == Role::kServer ? "serverAuth" : "clientAuth", what));
      break;
  }
  if (role == Role::kServer) {
    HML_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_subject_alt_name, ServerAltNames(options), what));
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) {
    return OpenSslStatus(StatusCode::kInternal, what + ": signing");
  }
  return cert;
}

// The PEM text of a memory BIO after `write` filled it.
template <typename F>
Result<std::string> ToPem(std::string_view what, F write) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || write(bio.get()) != 1) {
    return OpenSslStatus(StatusCode::kInternal, std::string(what) + ": PEM encoding");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

Result<std::string> CertPem(X509* cert, std::string_view what) {
  return ToPem(what, [cert](BIO* bio) { return PEM_write_bio_X509(bio, cert); });
}

Result<std::string> KeyPem(EVP_PKEY* key, std::string_view what) {
  return ToPem(what, [key](BIO* bio) {
    return PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

// kNotFound/kPermissionDenied/... naming `path` when it cannot be read (via stat).
Status CheckReadable(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat '" + path + "'");
  return Status::Ok();
}

Result<BioPtr> OpenPem(const std::string& path) {
  HML_RETURN_IF_ERROR(CheckReadable(path));
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (bio == nullptr) {
    return OpenSslStatus(StatusCode::kInvalidArgument, "PEM file '" + path + "': cannot open");
  }
  return bio;
}

}  // namespace

Status CertOptions::Validate() const {
  if (days < 1 || days > 36500) {
    return InvalidArgumentError("CertOptions: days " + std::to_string(days) +
                                " is not in [1, 36500]");
  }
  for (const std::string& name : extra_names) {
    unsigned char addr[16];
    if (inet_pton(AF_INET6, name.c_str(), addr) == 1) continue;
    bool ok = !name.empty() && name.size() <= 253;
    for (char c : name) {
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '*');
    }
    // The names go into OpenSSL's comma-separated extension syntax; anything else is refused
    // rather than escaped.
    if (!ok) {
      return InvalidArgumentError("CertOptions: extra name '" + name +
                                  "' is neither an IP address nor a DNS name");
    }
  }
  return Status::Ok();
}

Status MakeDevCertificates(const std::string& dir, const CertOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (dir.empty()) return InvalidArgumentError("certificate directory is empty");
  // Refuse before writing anything, so a refusal never leaves a half-replaced set.
  for (const char* file : kDevCertFiles) {
    const std::string path = dir + "/" + file;
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      return AlreadyExistsError("'" + path + "' exists; refusing to overwrite TLS material");
    }
    if (errno != ENOENT) return ErrnoStatus(errno, "stat '" + path + "'");
  }
  HML_RETURN_IF_ERROR(MakeDirs(dir, 0755));

  HML_ASSIGN_OR_RETURN(PKeyPtr ca_key, NewP256Key("ca.key"));
  HML_ASSIGN_OR_RETURN(PKeyPtr server_key, NewP256Key("server.key"));
  HML_ASSIGN_OR_RETURN(PKeyPtr client_key, NewP256Key("client.key"));
  HML_ASSIGN_OR_RETURN(X509Ptr ca, IssueCertificate(Role::kCa, "hybridml dev CA", ca_key.get(),
                                                    nullptr, ca_key.get(), options));
  HML_ASSIGN_OR_RETURN(X509Ptr server,
                       IssueCertificate(Role::kServer, "localhost", server_key.get(), ca.get(),
                                        ca_key.get(), options));
  HML_ASSIGN_OR_RETURN(X509Ptr client,
                       IssueCertificate(Role::kClient, "hybridml dev client", client_key.get(),
                                        ca.get(), ca_key.get(), options));

  struct Output {
    const char* file;
    Result<std::string> pem;
    int mode;
  };
  Output outputs[] = {
      {"ca.pem", CertPem(ca.get(), "ca.pem"), 0644},
      {"ca.key", KeyPem(ca_key.get(), "ca.key"), 0600},
      {"server.pem", CertPem(server.get(), "server.pem"), 0644},
      {"server.key", KeyPem(server_key.get(), "server.key"), 0600},
      {"client.pem", CertPem(client.get(), "client.pem"), 0644},
      {"client.key", KeyPem(client_key.get(), "client.key"), 0600},
  };
  for (const Output& out : outputs) HML_RETURN_IF_ERROR(out.pem.status());
  for (const Output& out : outputs) {
    AtomicWriteOptions write_options;
    write_options.mode = out.mode;
    HML_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + out.file, *out.pem, write_options));
  }
  return Status::Ok();
}

Status CheckPemFiles(const std::string& cert_file, const std::string& key_file,
                     const std::string& ca_file) {
  ERR_clear_error();
  HML_ASSIGN_OR_RETURN(BioPtr cert_bio, OpenPem(cert_file));
  X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return OpenSslStatus(StatusCode::kInvalidArgument,
                         "certificate file '" + cert_file + "' holds no PEM certificate");
  }
  HML_ASSIGN_OR_RETURN(BioPtr key_bio, OpenPem(key_file));
  PKeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return OpenSslStatus(StatusCode::kInvalidArgument,
                         "key file '" + key_file + "' holds no unencrypted PEM private key");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return OpenSslStatus(
        StatusCode::kInvalidArgument,
        "key file '" + key_file + "' does not match certificate '" + cert_file + "'");
  }
  if (!ca_file.empty()) {
    HML_ASSIGN_OR_RETURN(BioPtr ca_bio, OpenPem(ca_file));
    X509Ptr ca(PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr));
    if (ca == nullptr) {
      return OpenSslStatus(StatusCode::kInvalidArgument,
                           "CA file '" + ca_file + "' holds no PEM certificate");
    }
  }
  return Status::Ok();
}

}  // namespace hml::server
