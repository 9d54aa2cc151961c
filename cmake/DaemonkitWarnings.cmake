# daemonkit_warnings(target): our warnings, applied privately to our own
# targets only (never exported to consumers). -Werror comes from the
# DAEMONKIT_WERROR option, which the presets turn on.
function(daemonkit_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    -Wnull-dereference -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
  if(DAEMONKIT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
