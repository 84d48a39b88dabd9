// The one translation unit that compiles Boost.JSON's implementation (header-only mode), so that
// no boost_json library is linked. Kept alone so it can move to `common` when another module
// needs Boost.JSON too.
#include <boost/json/src.hpp>
