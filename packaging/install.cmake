# packaging/install.cmake: what `cmake --install` puts where (GNUInstallDirs), included at
# the end of the top-level CMakeLists.txt once every target exists.
#
#   bin/airlock                              the command (libairlock linked in statically)
#   lib/libairlock.so.X.Y.Z (+ soname link)  the shared library, for agents built elsewhere
#   include/airlock/<module>/*.h             the public headers, as the tree includes them
#                                            ("proto/al_codec.h"), and proto/airlock.pb-c.h
#   lib/pkgconfig/airlock.pc                 cflags -I include/airlock, libs -lairlock
#   lib/cmake/airlock/                       find_package(airlock) -> airlock::airlock
#   share/airlock/policies/default/          what `airlock init` copies (al_init.h)
#   share/airlock/examples/                  the demo service's sources
#   lib/systemd/system/airlock.service       the hardened unit (docs/operations.md)
#   lib/sysusers.d/airlock.conf              the airlock system user (systemd-sysusers)
#   share/man/man1/airlock.1                 the man page   } generated from --help at
#   share/bash-completion/completions/airlock               } build time (gen-docs.sh)
#   share/zsh/vendor-completions/_airlock                   }
#   share/man/man5/airlock.yaml.5, airlock-services.yaml.5, airlock-policy.5 (packaging/man5)
# Cross-file internals (*_int.h) are never installed.
include(CMakePackageConfigHelpers)

install(TARGETS airlock_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS airlock_shared EXPORT airlockTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})

foreach(module base proto store policies broker agents deploy)
    file(GLOB al_headers ${PROJECT_SOURCE_DIR}/${module}/*.h)
    list(FILTER al_headers EXCLUDE REGEX "_int\\.h$")
    install(FILES ${al_headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/airlock/${module})
endforeach()
install(FILES ${PROJECT_BINARY_DIR}/proto/airlock.pb-c.h
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/airlock/proto)

# pkg-config: paths relative to the .pc file's own directory, so that the --prefix given
# to `cmake --install` (not known at configure time) is the one used.
file(RELATIVE_PATH AL_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
configure_file(${CMAKE_CURRENT_LIST_DIR}/airlock.pc.in ${PROJECT_BINARY_DIR}/airlock.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/airlock.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

set(al_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/airlock)
install(EXPORT airlockTargets NAMESPACE airlock:: DESTINATION ${al_cmake_dir})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/airlockConfig.cmake.in
    ${PROJECT_BINARY_DIR}/airlockConfig.cmake INSTALL_DESTINATION ${al_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/airlockConfigVersion.cmake
    COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/airlockConfig.cmake
    ${PROJECT_BINARY_DIR}/airlockConfigVersion.cmake DESTINATION ${al_cmake_dir})

install(DIRECTORY ${PROJECT_SOURCE_DIR}/policies/default/
    DESTINATION ${CMAKE_INSTALL_DATADIR}/airlock/policies/default)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/
    DESTINATION ${CMAKE_INSTALL_DATADIR}/airlock/examples
    PATTERN CMakeLists.txt EXCLUDE)

# The unit names the installed binary, so it is written at install time, when the
# prefix given to `cmake --install --prefix` is known.
install(CODE "
    set(AL_UNIT_BINARY \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/airlock\")
    set(al_unit \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/airlock.service\")
    message(STATUS \"Installing: \${al_unit}\")
    configure_file(\"${CMAKE_CURRENT_LIST_DIR}/airlock.service.in\" \"\${al_unit}\" @ONLY)
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${al_unit}\")
")
install(FILES ${CMAKE_CURRENT_LIST_DIR}/airlock.sysusers RENAME airlock.conf
    DESTINATION lib/sysusers.d)

# The man page and the bash and zsh completions, made from the built command's --help after each
# link (so they cannot drift from it).
set(al_docs_out ${PROJECT_BINARY_DIR}/packaging)
add_custom_command(
    OUTPUT ${al_docs_out}/airlock.1 ${al_docs_out}/airlock.bash ${al_docs_out}/_airlock
    COMMAND /bin/sh ${CMAKE_CURRENT_LIST_DIR}/gen-docs.sh $<TARGET_FILE:airlock_cli>
            ${PROJECT_VERSION} ${al_docs_out}
    DEPENDS airlock_cli ${CMAKE_CURRENT_LIST_DIR}/gen-docs.sh
    COMMENT "man page, bash and zsh completion from airlock --help")
add_custom_target(airlock_docs ALL DEPENDS ${al_docs_out}/airlock.1 ${al_docs_out}/airlock.bash
    ${al_docs_out}/_airlock)
install(FILES ${al_docs_out}/airlock.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${al_docs_out}/airlock.bash RENAME airlock
    DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES ${al_docs_out}/_airlock DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
# Section 5: the file formats (airlock.yaml, services.yaml, the policy), hand-written troff;
# tests/install/test_man5.sh checks they name every key the loaders' tables accept.
install(FILES ${CMAKE_CURRENT_LIST_DIR}/man5/airlock.yaml.5 ${CMAKE_CURRENT_LIST_DIR}/man5/airlock-services.yaml.5
    ${CMAKE_CURRENT_LIST_DIR}/man5/airlock-policy.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
