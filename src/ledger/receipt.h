// Receipts: C2SP tlog-proof@v1 (https://c2sp.org/tlog-proof) text, offline-verifiable with the
// log's verifier key and the event's bytes.
//
//   c2sp.org/tlog-proof@v1
//   [extra <base64>]            (accepted when parsing; written only if non-empty)
//   index <decimal>
//   <base64 hash>               (inclusion proof, leaf sibling first, zero or more lines)
//
//   <signed checkpoint, verbatim>
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ledger/merkle.h"
#include "ledger/note.h"

namespace custody::ledger {

inline constexpr std::string_view kTlogProofHeader = "c2sp.org/tlog-proof@v1";

struct Receipt {
  uint64_t index = 0;
  std::vector<Hash> proof;
  std::string signed_checkpoint;  // the signed note, verbatim (ends with a newline)
  std::string extra;              // opaque, unauthenticated; empty when absent
  friend bool operator==(const Receipt&, const Receipt&) = default;
};

std::string FormatReceipt(const Receipt& receipt);

// Strict parse: exact header, canonical decimal index, each proof line the base64 of exactly 32
// bytes (at most 64 of them), a blank line, then a non-empty checkpoint. The checkpoint's
// signature is not checked here.
Result<Receipt> ParseReceipt(std::string_view text);

// Verifies a receipt for an event: the checkpoint's signature under `verifier`, its origin when
// `origin` is given, index < size, and that the inclusion proof of HashLeaf(event_bytes) leads to
// the checkpoint's root. The error names what failed.
Status VerifyReceipt(const NoteVerifier& verifier, std::string_view receipt_text,
                     std::span<const uint8_t> event_bytes,
                     std::optional<std::string_view> origin = std::nullopt);
// Same, for a caller that holds the leaf hash rather than the event.
Status VerifyReceiptLeafHash(const NoteVerifier& verifier, std::string_view receipt_text,
                             const Hash& leaf_hash,
                             std::optional<std::string_view> origin = std::nullopt);

}  // namespace custody::ledger
