// notifier: a payload that speaks sd_notify, for testing --notify.
//   notifier [STEP...]
// Steps run in order:
//   sleep=MS         wait MS milliseconds
//   send=TEXT        send TEXT ("\n" written as '|') to $NOTIFY_SOCKET
//   child-send=TEXT  send TEXT from a forked child (a process it started)
//   exit=N           exit with status N now
//   ping=MS          send WATCHDOG=1 every MS milliseconds, forever
//   confirm-reload   on SIGHUP: RELOADING=1, then READY=1 (forever)
//   ignore-hup       ignore SIGHUP from now on
//   hang             sleep forever
//   mark=TEXT        nothing: a tag for tests to find this process by
//   say=TEXT         write TEXT and a newline on stdout
//   retitle=TITLE    retitle itself as redis and nginx do (setproctitle):
//                    TITLE written over its arguments, the rest of their
//                    space filled with NULs
// Prints what it sees of its environment on stdout first.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "daemonkit/notify.hpp"

namespace {
volatile sig_atomic_t g_hup = 0;
void on_hup(int) {
  g_hup = 1;
}

std::string unescape(std::string s) {
  for (char& c : s)
    if (c == '|') c = '\n';
  return s;
}
void send(const std::string& text) {
  auto r = daemonkit::notify(text);
  if (!r) std::fprintf(stderr, "notifier: %s\n", r.error().message().c_str());
}
}  // namespace

int main(int argc, char** argv) {
  for (const char* v : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) {
    const char* value = std::getenv(v);
    std::printf("%s=%s\n", v, value ? value : "(unset)");
  }
  std::printf("pid=%d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  const std::vector<std::string> steps(argv + 1, argv + argc);  // retitle overwrites argv
  for (const std::string& step : steps) {
    auto eq = step.find('=');
    std::string key = step.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : step.substr(eq + 1);
    if (key == "sleep") {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(value.c_str())));
    } else if (key == "send") {
      send(unescape(value));
    } else if (key == "child-send") {
      pid_t pid = ::fork();
      if (pid < 0) {
        std::perror("notifier: fork");
        return 70;
      }
      if (pid == 0) {
        send(unescape(value));
        _exit(0);
      }
      ::waitpid(pid, nullptr, 0);
    } else if (key == "exit") {
      return std::atoi(value.c_str());
    } else if (key == "ping") {
      for (;;) {
        send("WATCHDOG=1");
        std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(value.c_str())));
      }
    } else if (key == "confirm-reload") {
      ::signal(SIGHUP, on_hup);
      for (;;) {
        ::pause();
        if (g_hup) {
          g_hup = 0;
          send("RELOADING=1");
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          send("READY=1");
        }
      }
    } else if (key == "ignore-hup") {
      ::signal(SIGHUP, SIG_IGN);
    } else if (key == "say") {
      std::printf("%s\n", value.c_str());
      std::fflush(stdout);
    } else if (key == "retitle") {
      // The arguments lie end to end; the NUL after the last one stays, so
      // the kernel shows the whole space: TITLE and then NULs.
      char* begin = argv[0];
      const size_t room = static_cast<size_t>(argv[argc - 1] + std::strlen(argv[argc - 1]) - begin);
      std::memset(begin, 0, room);
      std::memcpy(begin, value.data(), std::min(value.size(), room));
    } else if (key == "hang") {
      for (;;) ::pause();
    }
  }
  return 0;
}
