// Message digests (see digest.h), computed with OpenSSL's EVP interface.
#include "apigw/core/digest.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>

namespace apigw::core {
namespace {

// SHA-256, fetched from OpenSSL's provider once for the process. EVP_sha256() would be looked up again by every
// digest (OpenSSL 3's implicit fetch, under a process-wide lock), and a cache hit computes two.
const EVP_MD* sha256_md() {
  static const EVP_MD* const md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

std::string hex(const unsigned char* digest, unsigned int size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(std::size_t{size} * 2, '\0');
  for (unsigned int i = 0; i < size; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0x0f];
  }
  return out;
}

// One digest of `data` into `digest`, on a context kept per thread: EVP_Digest would allocate and free a context
// (and the algorithm's state) for each of the three digests of a cache hit.
bool digest_once(std::string_view data, unsigned char* digest, unsigned int& size) {
  struct Kept {
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    ~Kept() { EVP_MD_CTX_free(md); }
  };
  thread_local Kept kept;
  if (kept.md == nullptr) return EVP_Digest(data.data(), data.size(), digest, &size, sha256_md(), nullptr) == 1;
  return EVP_DigestInit_ex(kept.md, sha256_md(), nullptr) == 1 &&
         EVP_DigestUpdate(kept.md, data.data(), data.size()) == 1 && EVP_DigestFinal_ex(kept.md, digest, &size) == 1;
}

}  // namespace

std::string sha1_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha1(), nullptr) != 1) return {};
  return hex(digest, size);
}

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (!digest_once(data, digest.data(), size)) return {};
  return hex(digest.data(), size);
}

std::array<unsigned char, 32> sha256(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  std::array<unsigned char, 32> out{};
  if (digest_once(data, digest.data(), size) && size == out.size()) {
    std::copy_n(digest.begin(), out.size(), out.begin());
  }
  return out;
}

struct Sha256::Context {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  bool ok = md != nullptr && EVP_DigestInit_ex(md, sha256_md(), nullptr) == 1;
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
