// daemonkit/parse.hpp: parsers for command-line values from outside.
//
// Each returns a usage error (ErrorKind::usage) naming the offending text.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string_view>

#include "daemonkit/result.hpp"

namespace daemonkit {

// "SECONDS": a non-negative decimal number of seconds ("5", "0.25"), at most
// one year, rounded to milliseconds. `what` names the option in messages.
Result<std::chrono::milliseconds> parse_seconds(std::string_view text, std::string_view what);

}  // namespace daemonkit
