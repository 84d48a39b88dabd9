// The web console's built files (console/, docs/CONSOLE.md), embedded in the binary: the build
// runs vite and cmake/console_assets_gen.cmake turns its output into a generated .cc that
// defines ConsoleAssets(). Nothing is read from disk or fetched at run time.
#pragma once

#include <span>
#include <string_view>

namespace custody::api {

struct ConsoleAsset {
  std::string_view path;          // relative to /console/, e.g. "index.html", "assets/x-1a2b.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view bytes;
};

// Every embedded file, sorted by path; empty when the console was not built (CUSTODY_CONSOLE).
std::span<const ConsoleAsset> ConsoleAssets();

}  // namespace custody::api
