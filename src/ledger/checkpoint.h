// C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint) and their signing as signed notes.
//
//   body = origin "\n" decimal(size) "\n" base64(root) "\n" *(extension "\n")
//
// The origin is non-empty, the size has no leading zeros (unless 0), the root is the standard
// base64 of exactly 32 bytes, and extension lines are non-empty.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ledger/merkle.h"
#include "ledger/note.h"

namespace custody::ledger {

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
  std::vector<std::string> extensions;
  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

// OK iff FormatCheckpointBody(cp) parses back to cp: non-empty origin and extensions, valid UTF-8,
// no control characters or newlines.
Status ValidateCheckpoint(const Checkpoint& cp);

std::string FormatCheckpointBody(const Checkpoint& cp);

// Strict parse of a checkpoint body (a note's text, final newline included). InvalidArgument
// naming the first problem.
Result<Checkpoint> ParseCheckpointBody(std::string_view body);

// Formats, validates and signs `cp`: the signed note to publish.
Result<std::string> SignCheckpoint(const NoteSigner& signer, const Checkpoint& cp);

// Verifies the note under `verifier`, parses its body and, if `origin` is given, checks it.
Result<Checkpoint> OpenCheckpoint(const NoteVerifier& verifier, std::string_view signed_note,
                                  std::optional<std::string_view> origin = std::nullopt);

}  // namespace custody::ledger
