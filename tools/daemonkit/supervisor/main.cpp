// daemonkit-supervise: the resident supervisor, executed by `daemonkit
// start` and `daemonkit run` with what they resolved (handover.hpp). It
// takes over, installs its signal handlers, and supervises (loop.hpp).
#include <sys/prctl.h>

#include <cstdio>

#include "supervisor/handover.hpp"
#include "supervisor/loop.hpp"
#include "supervisor/state_file.hpp"

int main() {
  // Named as the command that started it ("daemonkit" in ps and top).
  (void)::prctl(PR_SET_NAME, "daemonkit", 0, 0, 0);
  auto taken = dkcli::take_over();
  if (const int* code = std::get_if<int>(&taken)) return *code;
  auto& h = std::get<dkcli::Handover>(taken);
  daemonkit::Daemon* caller = h.caller ? &*h.caller : nullptr;
  auto& pidfile = caller != nullptr ? caller->pidfile() : h.pidfile;
  // Signals were blocked across the exec: what arrived meanwhile waits for
  // the handlers.
  auto hub = dkcli::install_supervisor_signals();
  if (!hub) {
    if (caller == nullptr)
      std::fprintf(stderr, "daemonkit: cannot run: %s\n", hub.error().message().c_str());
    dkcli::DaemonFiles(h.config.pidfile, pidfile).fail_start(caller, hub.error());
    return 1;
  }
  daemonkit::unblock_all_signals();
  return dkcli::supervise(h.config, **hub, caller, pidfile);
}
