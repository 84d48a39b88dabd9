// ParseJson: Boost.JSON's parse, with every number that is not an integer read correctly rounded.
//
// Boost.JSON 1.81 (Debian 12's) reads a decimal number into a double with its own fast
// conversion, which is not correctly rounded: about one number in ten with 16 or 17 significant
// digits (what JavaScript's JSON.stringify writes for a computed double) comes out as the
// neighbouring double. Custody records and forwards what callers send, so such a number would be
// recorded, hashed and passed on to an MCP server one unit in the last place away from the
// caller's text. ParseJson reads the same grammar with the same options and limits, and converts
// each such number from its own text with std::from_chars (correctly rounded). A number beyond
// the range of a double keeps Boost.JSON's reading (infinity, or zero for an underflow).
//
// Use it for every text that comes from outside: request bodies, MCP messages, upstream answers,
// files. Include it in .cc files only (it brings in Boost.JSON's value).
#pragma once

#include <boost/json/parse_options.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>
#include <string_view>

namespace custody {

// As boost::json::parse(text, ec, sp, options): null and `ec` set when `text` is not one JSON
// text (extra data after it included).
boost::json::value ParseJson(std::string_view text, boost::json::error_code& ec,
                             boost::json::storage_ptr sp = {},
                             const boost::json::parse_options& options = {});
// As boost::json::parse(text): throws boost::system::system_error when `text` is not JSON.
boost::json::value ParseJson(std::string_view text);

}  // namespace custody
