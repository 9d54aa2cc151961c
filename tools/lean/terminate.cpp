// The lean programs' terminate handler (DAEMONKIT_LEAN_PROGRAMS).
//
// libstdc++'s default handler names an uncaught exception's type, and to
// do so links its demangler: about 50 KiB of a statically linked program,
// most of it resident in every supervisor, for a message that should never
// be printed. This definition of the handler variable takes the place of
// libstdc++'s (so its demangling handler is not linked at all), says what
// the exception said, and aborts.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>

namespace {

void say(const char* text) {
  (void)!::write(2, text, std::strlen(text));
}

[[noreturn]] void terminate_plainly() noexcept {
  say("terminate called");
  if (auto e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      say(" after an uncaught exception: ");
      say(x.what());
    } catch (...) {
      say(" after an uncaught exception");
    }
  }
  say("\n");
  std::abort();
}

}  // namespace

namespace __cxxabiv1 {
// NOLINTNEXTLINE: the name libstdc++ gives it (libsupc++/eh_term_handler.cc).
std::terminate_handler __terminate_handler = terminate_plainly;
}  // namespace __cxxabiv1
