#include "ledger/receipt.h"

#include <charconv>

#include "common/encoding.h"
#include "ledger/checkpoint.h"
#include "ledger/proof.h"

namespace custody::ledger {
namespace {

constexpr size_t kMaxProofHashes = 64;  // a tree of up to 2^64 - 1 leaves has at most 64 levels
constexpr size_t kMaxReceiptBytes = 1 << 20;

Status BadReceipt(std::string_view why) {
  return InvalidArgumentError("malformed receipt: " + std::string(why));
}

// Splits off the next line (without its newline). False if there is no newline left.
bool NextLine(std::string_view& rest, std::string_view* line) {
  const size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) return false;
  *line = rest.substr(0, nl);
  rest.remove_prefix(nl + 1);
  return true;
}

}  // namespace

std::string FormatReceipt(const Receipt& receipt) {
  std::string out;
  out.reserve(kTlogProofHeader.size() + 30 + receipt.proof.size() * 45 +
              receipt.signed_checkpoint.size() + 2);
  out.append(kTlogProofHeader);
  out += '\n';
  if (!receipt.extra.empty()) {
    out.append("extra ");
    out.append(Base64Encode(receipt.extra));
    out += '\n';
  }
  out.append("index ");
  out.append(std::to_string(receipt.index));
  out += '\n';
  for (const Hash& h : receipt.proof) {
    out.append(Base64Encode(h));
    out += '\n';
  }
  out += '\n';
  out.append(receipt.signed_checkpoint);
  return out;
}

Result<Receipt> ParseReceipt(std::string_view text) {
  if (text.size() > kMaxReceiptBytes) return BadReceipt("too large");
  std::string_view rest = text;
  std::string_view line;
  if (!NextLine(rest, &line) || line != kTlogProofHeader) {
    return BadReceipt("first line is not c2sp.org/tlog-proof@v1");
  }
  Receipt receipt;
  if (!NextLine(rest, &line)) return BadReceipt("missing index line");
  if (line.starts_with("extra ")) {
    auto extra = Base64Decode(line.substr(6));
    if (!extra.ok()) return BadReceipt("extra line is not base64");
    receipt.extra.assign(extra->begin(), extra->end());
    if (!NextLine(rest, &line)) return BadReceipt("missing index line");
  }
  if (!line.starts_with("index ")) return BadReceipt("missing index line");
  const std::string_view index = line.substr(6);
  if (index.empty() || (index.size() > 1 && index[0] == '0')) {
    return BadReceipt("index must be decimal without leading zeros");
  }
  auto [ptr, ec] = std::from_chars(index.data(), index.data() + index.size(), receipt.index);
  if (ec != std::errc() || ptr != index.data() + index.size()) {
    return BadReceipt("index must be a decimal that fits in 64 bits");
  }
  while (true) {
    if (!NextLine(rest, &line)) return BadReceipt("missing blank line before the checkpoint");
    if (line.empty()) break;
    if (receipt.proof.size() == kMaxProofHashes) return BadReceipt("too many proof hashes");
    auto h = Base64Decode(line);
    if (!h.ok() || h->size() != sizeof(Hash)) {
      return BadReceipt("proof line " + std::to_string(receipt.proof.size() + 1) +
                        " is not the base64 of a 32-byte hash");
    }
    Hash hash;
    std::copy(h->begin(), h->end(), hash.begin());
    receipt.proof.push_back(hash);
  }
  if (rest.empty()) return BadReceipt("missing checkpoint");
  receipt.signed_checkpoint = std::string(rest);
  return receipt;
}

Status VerifyReceiptLeafHash(const NoteVerifier& verifier, std::string_view receipt_text,
                             const Hash& leaf_hash, std::optional<std::string_view> origin) {
  ASSIGN_OR_RETURN(Receipt receipt, ParseReceipt(receipt_text));
  auto cp = OpenCheckpoint(verifier, receipt.signed_checkpoint, origin);
  if (!cp.ok()) return cp.status().WithContext("receipt checkpoint");
  if (receipt.index >= cp->size) {
    return InvalidArgumentError("receipt index " + std::to_string(receipt.index) +
                                " is not below the checkpoint's tree size " +
                                std::to_string(cp->size));
  }
  Status s = VerifyInclusion(receipt.index, cp->size, leaf_hash, receipt.proof, cp->root);
  if (!s.ok()) {
    return s.WithContext("receipt inclusion proof (event does not match, or proof was altered)");
  }
  return OkStatus();
}

Status VerifyReceipt(const NoteVerifier& verifier, std::string_view receipt_text,
                     std::span<const uint8_t> event_bytes, std::optional<std::string_view> origin) {
  return VerifyReceiptLeafHash(verifier, receipt_text, HashLeaf(event_bytes), origin);
}

}  // namespace custody::ledger
