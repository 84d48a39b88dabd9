// The one translation unit that compiles Boost.URL's implementation for the whole binary
// (header-only mode; Debian's Boost 1.81 ships no compiled boost_url).
#include <boost/url/src.hpp>
