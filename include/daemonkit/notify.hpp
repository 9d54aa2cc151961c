// daemonkit/notify.hpp: the sd_notify protocol, client side.
//
// A service manager that wants to hear about readiness sets $NOTIFY_SOCKET
// to a datagram socket path ("@name" for the abstract namespace). notify()
// sends one datagram such as "READY=1" or "STATUS=serving\nREADY=1" there.
#pragma once

#include <string_view>

#include "daemonkit/result.hpp"

namespace daemonkit {

// Sends `state` to $NOTIFY_SOCKET. Returns false (not an error) when the
// variable is unset, i.e. nobody is listening.
Result<bool> notify(std::string_view state);

// Sends `state` to the socket at `address` (a path, or "@name").
Result<void> notify_to(std::string_view address, std::string_view state);

}  // namespace daemonkit
