# Man pages and the Debian package.
#
# With DAEMONKIT_DEB_LAYOUT on (scripts/package.sh turns it on) the install
# holds what Debian policy asks of a binary package beyond the plain install:
# man pages compressed with gzip -9n, /usr/share/doc/daemonkit/changelog.gz
# and copyright, and a static
# library stripped the way dh_strip strips one. Off, the install is the
# plain upstream one. docs/packaging.md explains every choice.
option(DAEMONKIT_DEB_LAYOUT "Install in the layout of a Debian binary package" OFF)

set(DAEMONKIT_DEB_DIR ${PROJECT_SOURCE_DIR}/packaging/deb)
if(DAEMONKIT_DEB_LAYOUT)
  find_program(GZIP_EXECUTABLE gzip REQUIRED)
  # dpkg and lintian read the version from the changelog's newest entry.
  file(STRINGS ${DAEMONKIT_DEB_DIR}/changelog newest LIMIT_COUNT 1)
  if(NOT newest MATCHES "^daemonkit \\(${PROJECT_VERSION}\\) ")
    message(FATAL_ERROR "packaging/deb/changelog: the newest entry is '${newest}', "
                        "but the project's version is ${PROJECT_VERSION}")
  endif()
endif()

# daemonkit_gzip(source output): compress at build time, without a name or a
# time stamp in the header (-n), so the bytes depend on the content alone.
function(daemonkit_gzip source output)
  get_filename_component(name ${output} NAME)
  add_custom_command(OUTPUT ${output}
    COMMAND sh -c "\"$0\" -9nc \"$1\" > \"$2\"" ${GZIP_EXECUTABLE} ${source} ${output}
    DEPENDS ${source} VERBATIM)
  add_custom_target(deb_${name} ALL DEPENDS ${output})
endfunction()

# daemonkit_install_man(page): docs/man/NAME.N into man/manN, compressed in
# the Debian layout.
function(daemonkit_install_man page)
  get_filename_component(name ${page} NAME)
  string(REGEX MATCH "[0-9]$" section ${name})
  if(DAEMONKIT_DEB_LAYOUT)
    daemonkit_gzip(${PROJECT_SOURCE_DIR}/${page} ${PROJECT_BINARY_DIR}/deb/${name}.gz)
    install(FILES ${PROJECT_BINARY_DIR}/deb/${name}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  else()
    install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endif()
endfunction()

# daemonkit_install_deb_extras(): the package's changelog and copyright; and, when the install strips (cpack with
# CPACK_STRIP_FILES), what dh_strip removes beyond CMake's plain strip: the
# .comment and .note sections of the programs, and the debug sections,
# .comment and .note of the static library. Call it after the install rules
# of the programs and the library: install(CODE) runs in the rules' order.
function(daemonkit_install_deb_extras)
  if(NOT DAEMONKIT_DEB_LAYOUT)
    return()
  endif()
  daemonkit_gzip(${DAEMONKIT_DEB_DIR}/changelog ${PROJECT_BINARY_DIR}/deb/changelog.gz)
  install(FILES ${PROJECT_BINARY_DIR}/deb/changelog.gz ${DAEMONKIT_DEB_DIR}/copyright
    DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/daemonkit)

  set(programs "")
  foreach(target daemonkit_tool heartbeat)
    if(TARGET ${target})
      list(APPEND programs ${CMAKE_INSTALL_BINDIR}/$<TARGET_FILE_NAME:${target}>)
    endif()
  endforeach()
  set(archives "")
  if(NOT BUILD_SHARED_LIBS)
    set(archives ${CMAKE_INSTALL_LIBDIR}/$<TARGET_FILE_NAME:daemonkit>)
  endif()
  install(CODE "
    function(daemonkit_strip options files)
      foreach(file IN LISTS files)
        if(NOT IS_ABSOLUTE \"\${file}\")
          set(file \"\${CMAKE_INSTALL_PREFIX}/\${file}\")
        endif()
        set(file \"\$ENV{DESTDIR}\${file}\")
        execute_process(COMMAND \"${CMAKE_STRIP}\" \${options} \"\${file}\" RESULT_VARIABLE failed)
        if(failed)
          message(FATAL_ERROR \"strip \${options} \${file}: \${failed}\")
        endif()
      endforeach()
    endfunction()
    if(CMAKE_INSTALL_DO_STRIP)
      daemonkit_strip(\"--remove-section=.comment;--remove-section=.note\" \"${programs}\")
      daemonkit_strip(\"--strip-debug;--remove-section=.comment;--remove-section=.note;--enable-deterministic-archives\"
                      \"${archives}\")
    endif()")
endfunction()
