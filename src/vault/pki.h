// The vault's private CA (OpenSSL 3): issues the server certificate and the
// device client certificates (端末認証). Keys are EC P-256; certificates are
// PEM. A device certificate is identified by the SHA-256 of its DER encoding.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace mamori::vault {

struct KeyAndCert {
  std::string key_pem;
  std::string cert_pem;
};

// A new self-signed CA valid for `days`.
Result<KeyAndCert> CreateCa(const std::string& common_name, int days);
// A server certificate signed by the CA, with the given DNS names / IPs as SANs
// (comma-separated, e.g. "DNS:localhost,IP:127.0.0.1").
Result<KeyAndCert> IssueServerCert(const KeyAndCert& ca, const std::string& common_name,
                                   const std::string& san, int days);

// A private key and a CSR for a device (client side). CN is the device name.
struct KeyAndCsr {
  std::string key_pem;
  std::string csr_pem;
};
Result<KeyAndCsr> CreateDeviceCsr(const std::string& common_name);

// Signs a device CSR (after admin approval). The subject is replaced by
// CN=<common_name>, O=mamori device <device_id>; only clientAuth is allowed.
// Refuses CSRs whose signature does not verify or whose key is not EC P-256
// or RSA >= 2048. `max_csr_bytes` bounds the input.
Result<std::string> SignDeviceCsr(const KeyAndCert& ca, const std::string& csr_pem,
                                  const std::string& common_name, int64_t device_id, int days);

// Hex SHA-256 of a PEM certificate's DER encoding.
Result<std::string> CertFingerprint(const std::string& cert_pem);

}  // namespace mamori::vault
