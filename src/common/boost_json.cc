// The one translation unit that compiles Boost.JSON's implementation for the whole binary
// (header-only mode). Other files include <boost/json.hpp> in .cc files only.
#include <boost/json/src.hpp>
