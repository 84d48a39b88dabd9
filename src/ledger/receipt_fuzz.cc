// libFuzzer target: receipts (C2SP tlog-proof text, receipt.h) as an auditor checks them offline
// against an event. The input is a verifier key line, the event's bytes on one line, then the
// receipt:
//   <name+hex8(keyid)+base64(0x01||pub)>\n<event bytes>\n<c2sp.org/tlog-proof@v1 ...>
// so seeds made by a real ledger (fuzz/corpus/receipt/) reach the proof and signature paths.
// Properties checked beyond "an error, never a crash":
//   - a receipt that parses formats back to the same bytes (one spelling per receipt; an empty
//     "extra" line is the one thing the formatter drops) and parses again to the same receipt;
//   - a receipt that verifies for an event does not verify for any other event bytes.
// Built by the fuzz preset (scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "ledger/checkpoint.h"
#include "ledger/note.h"
#include "ledger/receipt.h"

namespace {

using namespace custody::ledger;

void Check(bool ok, const char* what, std::string_view input) {
  if (ok) return;
  std::fprintf(stderr, "%s\n  input: %.*s\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Splits off the next line, without its newline (the rest of the input when there is none).
std::string_view NextLine(std::string_view& rest) {
  const size_t nl = rest.find('\n');
  const std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const std::string_view vkey = NextLine(rest);
  const std::string_view event = NextLine(rest);
  const std::string_view text = rest;

  auto receipt = ParseReceipt(text);
  if (receipt.ok()) {
    const std::string formatted = FormatReceipt(*receipt);
    const bool empty_extra = text.substr(kTlogProofHeader.size()).starts_with("\nextra \n");
    Check(empty_extra || formatted == text, "a receipt formats back to other bytes", formatted);
    auto again = ParseReceipt(formatted);
    Check(again.ok() && *again == *receipt, "a formatted receipt parses differently", formatted);
  }

  auto verifier = NoteVerifier::FromVerifierKey(vkey);
  if (!verifier.ok()) return 0;
  if (!VerifyReceipt(*verifier, text, Bytes(event)).ok()) return 0;
  Check(receipt.ok(), "a receipt verifies but does not parse", text);
  const std::string other = std::string(event) + " ";
  Check(!VerifyReceipt(*verifier, text, Bytes(other)).ok(),
        "a receipt verifies for other event bytes", text);
  auto cp = OpenCheckpoint(*verifier, receipt->signed_checkpoint);
  Check(cp.ok() && receipt->index < cp->size, "a verified receipt's checkpoint does not open",
        text);
  Check(VerifyReceipt(*verifier, text, Bytes(event), cp->origin).ok(),
        "a verified receipt fails under its own origin", text);
  return 0;
}
