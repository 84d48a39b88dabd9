// Forwarding header: the SQLite wrapper is store/sqlite/sqlite_db.h. Kept only for
// mcp/tool_pins.cc, which moves into store/ with the tool pin store (issue #15).
#pragma once

#include "store/sqlite/sqlite_db.h"  // IWYU pragma: export
