// Message digests (see digest.h), computed with OpenSSL's EVP interface.
#include "apigw/core/digest.h"

#include <openssl/evp.h>

#include <array>

namespace apigw::core {
namespace {

std::string hex(const unsigned char* digest, unsigned int size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0x0f];
  }
  return out;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) return {};
  return hex(digest.data(), size);
}

struct Sha256::Context {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  bool ok = md != nullptr && EVP_DigestInit_ex(md, EVP_sha256(), nullptr) == 1;
  ~Context() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : context_(std::make_unique<Context>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::string_view data) {
  if (context_->ok && !data.empty()) context_->ok = EVP_DigestUpdate(context_->md, data.data(), data.size()) == 1;
}

std::string Sha256::hex_final() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  std::string out;
  if (context_->ok && EVP_DigestFinal_ex(context_->md, digest.data(), &size) == 1) out = hex(digest.data(), size);
  context_->ok = EVP_DigestInit_ex(context_->md, EVP_sha256(), nullptr) == 1;
  return out;
}

}  // namespace apigw::core
