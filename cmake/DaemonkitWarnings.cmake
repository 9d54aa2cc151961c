# daemonkit_warnings(target): our warnings, applied privately to our own
# targets only (never exported to consumers). -Werror comes from the
# DAEMONKIT_WERROR option, which the presets turn on.
function(daemonkit_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
  # GCC 12 at -O2/-O3 reports -Wrestrict and -Wnull-dereference inside
  # libstdc++'s own std::string code (GCC bug 105329 and kin): false
  # positives that would break optimized builds under -Werror. GCC 13 fixed
  # them; keep -Wnull-dereference where it is trustworthy.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  else()
    target_compile_options(${target} PRIVATE -Wnull-dereference)
  endif()
  if(DAEMONKIT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
