#include "vault/pki.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "crypto/crypto.h"

namespace mamori::vault {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

constexpr size_t kMaxPemBytes = 64 * 1024;

Status OsslError(const std::string& what) {
  return Internal(what + " (OpenSSL error " + std::to_string(ERR_get_error()) + ")");
}

Result<PkeyPtr> NewEcKey() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (!k) return OsslError("EC key generation failed");
  return PkeyPtr(k);
}

Result<std::string> KeyPem(EVP_PKEY* k) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr))
    return OsslError("writing a private key");
  char* p = nullptr;
  long n = BIO_get_mem_data(b.get(), &p);
  return std::string(p, static_cast<size_t>(n));
}

Result<std::string> CertPem(X509* c) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(b.get(), c)) return OsslError("writing a certificate");
  char* p = nullptr;
  long n = BIO_get_mem_data(b.get(), &p);
  return std::string(p, static_cast<size_t>(n));
}

Result<PkeyPtr> ReadKey(const std::string& pem) {
  if (pem.size() > kMaxPemBytes) return InvalidArgument("private key PEM is too large");
  BioPtr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr);
  if (!k) return InvalidArgument("not a PEM private key");
  return PkeyPtr(k);
}

Result<X509Ptr> ReadCert(const std::string& pem) {
  if (pem.size() > kMaxPemBytes) return InvalidArgument("certificate PEM is too large");
  BioPtr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509* c = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr);
  if (!c) return InvalidArgument("not a PEM certificate");
  return X509Ptr(c);
}

Status SetRandomSerial(X509* c) {
  std::string bytes = crypto::RandomBytes(16);
  bytes[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), 16, nullptr);
  if (!bn) return OsslError("serial");
  ASN1_INTEGER* ai = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
  BN_free(bn);
  if (!ai) return OsslError("serial");
  return Status::Ok();
}

Status AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) return OsslError(std::string("certificate extension ") + value);
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!ok) return OsslError("adding an extension");
  return Status::Ok();
}

Result<X509Ptr> NewCert(EVP_PKEY* subject_key, const std::string& cn, const std::string& org,
                        int days) {
  X509Ptr c(X509_new());
  if (!c) return OsslError("X509_new");
  X509_set_version(c.get(), 2);
  RETURN_IF_ERROR(SetRandomSerial(c.get()));
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(c.get(), subject_key);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  if (!org.empty())
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0);
  return c;
}

}  // namespace

Result<KeyAndCert> CreateCa(const std::string& cn, int days) {
  ASSIGN_OR_RETURN(PkeyPtr key, NewEcKey());
  ASSIGN_OR_RETURN(X509Ptr c, NewCert(key.get(), cn, "mamori vault CA", days));
  X509_set_issuer_name(c.get(), X509_get_subject_name(c.get()));
  RETURN_IF_ERROR(AddExt(c.get(), c.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  RETURN_IF_ERROR(AddExt(c.get(), c.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(AddExt(c.get(), c.get(), NID_subject_key_identifier, "hash"));
  if (!X509_sign(c.get(), key.get(), EVP_sha256())) return OsslError("signing the CA");
  KeyAndCert out;
  ASSIGN_OR_RETURN(out.key_pem, KeyPem(key.get()));
  ASSIGN_OR_RETURN(out.cert_pem, CertPem(c.get()));
  return out;
}

Result<KeyAndCert> IssueServerCert(const KeyAndCert& ca, const std::string& cn,
                                   const std::string& san, int days) {
  ASSIGN_OR_RETURN(PkeyPtr ca_key, ReadKey(ca.key_pem));
  ASSIGN_OR_RETURN(X509Ptr ca_cert, ReadCert(ca.cert_pem));
  ASSIGN_OR_RETURN(PkeyPtr key, NewEcKey());
  ASSIGN_OR_RETURN(X509Ptr c, NewCert(key.get(), cn, "mamori vault", days));
  X509_set_issuer_name(c.get(), X509_get_subject_name(ca_cert.get()));
  RETURN_IF_ERROR(AddExt(c.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExt(c.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(AddExt(c.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth"));
  RETURN_IF_ERROR(AddExt(c.get(), ca_cert.get(), NID_subject_alt_name, san.c_str()));
  if (!X509_sign(c.get(), ca_key.get(), EVP_sha256())) return OsslError("signing a server cert");
  KeyAndCert out;
  ASSIGN_OR_RETURN(out.key_pem, KeyPem(key.get()));
  ASSIGN_OR_RETURN(out.cert_pem, CertPem(c.get()));
  return out;
}

Result<KeyAndCsr> CreateDeviceCsr(const std::string& cn) {
  ASSIGN_OR_RETURN(PkeyPtr key, NewEcKey());
  ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  if (!X509_REQ_sign(req.get(), key.get(), EVP_sha256())) return OsslError("signing a CSR");
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509_REQ(b.get(), req.get())) return OsslError("writing a CSR");
  char* p = nullptr;
  long n = BIO_get_mem_data(b.get(), &p);
  KeyAndCsr out;
  out.csr_pem.assign(p, static_cast<size_t>(n));
  ASSIGN_OR_RETURN(out.key_pem, KeyPem(key.get()));
  return out;
}

Result<std::string> SignDeviceCsr(const KeyAndCert& ca, const std::string& csr_pem,
                                  const std::string& cn, int64_t device_id, int days) {
  if (csr_pem.size() > kMaxPemBytes) return InvalidArgument("CSR is too large");
  BioPtr b(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  ReqPtr req(PEM_read_bio_X509_REQ(b.get(), nullptr, nullptr, nullptr));
  if (!req) return InvalidArgument("the CSR is not a PEM certificate request");
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (!pub) return InvalidArgument("the CSR has no public key");
  if (X509_REQ_verify(req.get(), pub) != 1)
    return InvalidArgument("the CSR signature does not verify");
  int id = EVP_PKEY_get_base_id(pub);
  if (id == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t len = 0;
    if (!EVP_PKEY_get_group_name(pub, group, sizeof group, &len) ||
        std::string(group) != "prime256v1")
      return InvalidArgument("device keys must be EC P-256 (or RSA >= 2048)");
  } else if (id == EVP_PKEY_RSA) {
    if (EVP_PKEY_get_bits(pub) < 2048)
      return InvalidArgument("RSA device keys must be >= 2048 bits");
  } else {
    return InvalidArgument("device keys must be EC P-256 (or RSA >= 2048)");
  }
  ASSIGN_OR_RETURN(PkeyPtr ca_key, ReadKey(ca.key_pem));
  ASSIGN_OR_RETURN(X509Ptr ca_cert, ReadCert(ca.cert_pem));
  ASSIGN_OR_RETURN(X509Ptr c, NewCert(pub, cn, "mamori device " + std::to_string(device_id), days));
  X509_set_issuer_name(c.get(), X509_get_subject_name(ca_cert.get()));
  RETURN_IF_ERROR(AddExt(c.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExt(c.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(AddExt(c.get(), ca_cert.get(), NID_ext_key_usage, "clientAuth"));
  if (!X509_sign(c.get(), ca_key.get(), EVP_sha256())) return OsslError("signing a device cert");
  return CertPem(c.get());
}

Result<std::string> CertFingerprint(const std::string& cert_pem) {
  ASSIGN_OR_RETURN(X509Ptr c, ReadCert(cert_pem));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!X509_digest(c.get(), EVP_sha256(), md, &n)) return OsslError("certificate digest");
  return crypto::ToHex(std::string_view(reinterpret_cast<char*>(md), n));
}

}  // namespace mamori::vault
