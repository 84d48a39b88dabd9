// `custody config keys`: prints every configuration key from the one table the parser uses
// (api::ConfigKeys()): name, environment variable, default, accepted values and description.
// `--format markdown` prints the same as a Markdown table; docs/CONFIG.md is that output.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include "api/config.h"
#include "cli/commands.h"

namespace custody::cli {
namespace {

using api::ConfigKey;
using api::ConfigType;

std::string EnvColumn(const ConfigKey& k) {
  return k.env.empty() ? "(file only)" : std::string(k.env);
}

// The default as it would be written in the file: strings quoted.
std::string DefaultColumn(const ConfigKey& k) {
  if (k.type == ConfigType::kString) return "\"" + std::string(k.default_text) + "\"";
  return std::string(k.default_text);
}

// What the service checks besides the type; empty when any value of the type will do. In
// Markdown, values are code.
std::string AllowedColumn(const ConfigKey& k, bool markdown) {
  std::string_view tick = markdown ? "`" : "";
  auto code = [&](std::string_view v) {
    return std::string(tick) + std::string(v) + std::string(tick);
  };
  if (k.type == ConfigType::kInteger && (k.min != INT64_MIN || k.max != INT64_MAX)) {
    return code("[" + std::to_string(k.min) + ", " + std::to_string(k.max) + "]");
  }
  if (!k.choices.empty()) {
    std::string out;
    for (size_t pos = 0; pos <= k.choices.size();) {
      size_t bar = std::min(k.choices.find('|', pos), k.choices.size());
      out += (out.empty() ? "" : ", ") + code(k.choices.substr(pos, bar - pos));
      pos = bar + 1;
    }
    return out;
  }
  if (k.non_empty) return "not empty";
  return "";
}

// Text in a Markdown table cell: no column breaks, no HTML.
std::string MarkdownCell(std::string_view text) {
  std::string out;
  for (char ch : text) {
    if (ch == '|') {
      out += "\\|";
    } else if (ch == '<') {
      out += "&lt;";
    } else if (ch == '>') {
      out += "&gt;";
    } else {
      out += ch;
    }
  }
  return out;
}

void PrintMarkdown() {
  std::cout << "| Key | Environment variable | Type | Default | Allowed | Description |\n"
            << "|---|---|---|---|---|---|\n";
  for (const ConfigKey& k : api::ConfigKeys()) {
    std::string env = k.env.empty() ? "(file only)" : "`" + std::string(k.env) + "`";
    std::cout << "| `" << k.name << "` | " << env << " | " << api::ConfigTypeName(k.type) << " | `"
              << DefaultColumn(k) << "` | " << AllowedColumn(k, true) << " | "
              << MarkdownCell(k.description) << " |\n";
  }
}

// One key per line, in aligned columns: name, variable, default, description (allowed values).
void PrintText() {
  size_t name_w = 0, env_w = 0, default_w = 0;
  for (const ConfigKey& k : api::ConfigKeys()) {
    name_w = std::max(name_w, k.name.size());
    env_w = std::max(env_w, EnvColumn(k).size());
    default_w = std::max(default_w, DefaultColumn(k).size());
  }
  auto pad = [](std::string s, size_t w) {
    s.resize(std::max(s.size(), w), ' ');
    return s;
  };
  for (const ConfigKey& k : api::ConfigKeys()) {
    std::string allowed = AllowedColumn(k, false);
    std::cout << pad(std::string(k.name), name_w) << "  " << pad(EnvColumn(k), env_w) << "  "
              << pad(DefaultColumn(k), default_w) << "  " << k.description
              << (allowed.empty() ? "" : " (allowed: " + allowed + ")") << "\n";
  }
}

}  // namespace

void RegisterConfigCommands(CLI::App& app) {
  CLI::App* config = app.add_subcommand("config", "The service's configuration keys");
  config->require_subcommand(1);
  auto format = std::make_shared<std::string>("text");
  CLI::App* keys = config->add_subcommand(
      "keys", "Every key: name, environment variable, default, allowed values, description");
  keys->add_option("--format", *format, "text (one key per line) or markdown")
      ->check(CLI::IsMember({"text", "markdown"}));
  keys->callback([format] {
    if (*format == "markdown") {
      PrintMarkdown();
    } else {
      PrintText();
    }
  });
}

}  // namespace custody::cli
