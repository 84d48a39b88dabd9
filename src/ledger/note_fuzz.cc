// libFuzzer target: signed notes and checkpoint bodies, as a witness or an auditor receives them
// (note.h, checkpoint.h). The input is a verifier key line, then the note:
//   <name+hex8(keyid)+base64(0x01||pub)>\n<signed note>
// so seeds signed by a real ledger key (fuzz/corpus/note/) reach the signature paths. Properties
// checked beyond "an error, never a crash":
//   - a verifier key that parses re-encodes to the same bytes (one spelling per key);
//   - the text a verified note returns is a prefix of the note ending in a newline, and an
//     altered text under the same signature lines no longer verifies;
//   - a checkpoint body that parses formats back to the same bytes, and parses again to the
//     same checkpoint.
// Built by the fuzz preset (scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ledger/checkpoint.h"
#include "ledger/note.h"

namespace {

using namespace custody::ledger;

void Check(bool ok, const char* what, std::string_view input) {
  if (ok) return;
  std::fprintf(stderr, "%s\n  input: %.*s\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

void CheckBody(std::string_view body) {
  auto cp = ParseCheckpointBody(body);
  if (!cp.ok()) return;
  Check(ValidateCheckpoint(*cp).ok(), "a parsed checkpoint does not validate", body);
  const std::string formatted = FormatCheckpointBody(*cp);
  Check(formatted == body, "a checkpoint body formats back to other bytes", formatted);
  auto again = ParseCheckpointBody(formatted);
  Check(again.ok() && *again == *cp, "a formatted checkpoint parses differently", formatted);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const std::string_view vkey = input.substr(0, nl);
  const std::string_view note = nl == std::string_view::npos ? "" : input.substr(nl + 1);

  CheckBody(note);
  auto verifier = NoteVerifier::FromVerifierKey(vkey);
  if (!verifier.ok()) return 0;
  Check(verifier->VerifierKey() == vkey, "a verifier key re-encodes to other bytes", vkey);

  auto text = verifier->Verify(note);
  if (!text.ok()) return 0;
  Check(!text->empty() && text->back() == '\n' && note.starts_with(*text) &&
            note.size() > text->size() && note[text->size()] == '\n',
        "a verified note's text is not the part before its signatures", note);
  CheckBody(*text);

  // The same signature lines over another text must not verify.
  std::string altered(note);
  altered[0] = altered[0] == 'x' ? 'y' : 'x';
  Check(!verifier->Verify(altered).ok(), "a note verifies after its text changed", altered);
  return 0;
}
