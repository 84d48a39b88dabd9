#include "ledger/checkpoint.h"

#include <charconv>

#include "common/encoding.h"

namespace custody::ledger {
namespace {

Status BadBody(std::string_view why) {
  return InvalidArgumentError("malformed checkpoint: " + std::string(why));
}

// One line's content must be non-empty and free of control characters.
Status ValidateLine(std::string_view line, std::string_view what) {
  if (line.empty()) return BadBody(std::string(what) + " is empty");
  for (char c : line) {
    const auto b = static_cast<uint8_t>(c);
    if (b < 0x20 || b == 0x7F) return BadBody(std::string(what) + " has a control character");
  }
  return OkStatus();
}

}  // namespace

Status ValidateCheckpoint(const Checkpoint& cp) {
  RETURN_IF_ERROR(ValidateLine(cp.origin, "origin"));
  for (const auto& ext : cp.extensions) RETURN_IF_ERROR(ValidateLine(ext, "extension line"));
  return OkStatus();
}

std::string FormatCheckpointBody(const Checkpoint& cp) {
  std::string body;
  body.reserve(cp.origin.size() + 20 + 45 + 3);
  body.append(cp.origin);
  body += '\n';
  body.append(std::to_string(cp.size));
  body += '\n';
  body.append(Base64Encode(cp.root));
  body += '\n';
  for (const auto& ext : cp.extensions) {
    body.append(ext);
    body += '\n';
  }
  return body;
}

Result<Checkpoint> ParseCheckpointBody(std::string_view body) {
  if (body.empty() || body.back() != '\n') return BadBody("does not end with a newline");
  std::vector<std::string_view> lines;
  for (std::string_view rest = body; !rest.empty();) {
    const size_t nl = rest.find('\n');
    lines.push_back(rest.substr(0, nl));
    rest.remove_prefix(nl + 1);
  }
  if (lines.size() < 3) return BadBody("fewer than three lines");
  Checkpoint cp;
  RETURN_IF_ERROR(ValidateLine(lines[0], "origin"));
  cp.origin = std::string(lines[0]);

  const std::string_view size = lines[1];
  if (size.empty() || (size.size() > 1 && size[0] == '0')) {
    return BadBody("tree size must be decimal without leading zeros");
  }
  auto [ptr, ec] = std::from_chars(size.data(), size.data() + size.size(), cp.size);
  if (ec != std::errc() || ptr != size.data() + size.size()) {
    return BadBody("tree size must be a decimal that fits in 64 bits");
  }

  auto root = Base64Decode(lines[2]);
  if (!root.ok() || root->size() != cp.root.size()) {
    return BadBody("root hash must be the base64 of 32 bytes");
  }
  std::copy(root->begin(), root->end(), cp.root.begin());

  for (size_t i = 3; i < lines.size(); ++i) {
    RETURN_IF_ERROR(ValidateLine(lines[i], "extension line"));
    cp.extensions.emplace_back(lines[i]);
  }
  return cp;
}

Result<std::string> SignCheckpoint(const NoteSigner& signer, const Checkpoint& cp) {
  RETURN_IF_ERROR(ValidateCheckpoint(cp));
  return signer.Sign(FormatCheckpointBody(cp));
}

Result<Checkpoint> OpenCheckpoint(const NoteVerifier& verifier, std::string_view signed_note,
                                  std::optional<std::string_view> origin) {
  ASSIGN_OR_RETURN(std::string body, verifier.Verify(signed_note));
  ASSIGN_OR_RETURN(Checkpoint cp, ParseCheckpointBody(body));
  if (origin.has_value() && cp.origin != *origin) {
    return UnauthenticatedError("checkpoint origin \"" + cp.origin + "\" is not the expected \"" +
                                std::string(*origin) + "\"");
  }
  return cp;
}

}  // namespace custody::ledger
