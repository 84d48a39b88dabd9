// Temporary forwarding header: SqliteAdminTokenStore is store/sqlite/sqlite_admin_token_store.h,
// and code outside store/ opens stores through store/stores.h. Goes once its last user (being
// edited in parallel) is moved onto the factory (issue #15).
#pragma once

#include "store/sqlite/sqlite_admin_token_store.h"  // IWYU pragma: export
