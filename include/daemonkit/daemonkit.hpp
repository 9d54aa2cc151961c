// daemonkit/daemonkit.hpp: everything, for programs that want it all.
#pragma once

#include "daemonkit/app.hpp"
#include "daemonkit/commands.hpp"
#include "daemonkit/control.hpp"
#include "daemonkit/detach.hpp"
#include "daemonkit/error.hpp"
#include "daemonkit/fd.hpp"
#include "daemonkit/log.hpp"
#include "daemonkit/notify.hpp"
#include "daemonkit/parse.hpp"
#include "daemonkit/pidfile.hpp"
#include "daemonkit/result.hpp"
#include "daemonkit/signals.hpp"
#include "daemonkit/text.hpp"
