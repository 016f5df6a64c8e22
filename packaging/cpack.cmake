# packaging/cpack.cmake: the Debian package (CPack, DEB generator), included at the end of
# the top-level CMakeLists.txt after install.cmake. `make package` (or `cmake --build build
# --target package`) writes build/airlock_VERSION_ARCH.deb holding everything `cmake
# --install` installs, under /usr: the command, libairlock.so and its headers, the
# systemd unit and sysusers.d entry, the man pages, the bash and zsh completions and the
# default policy. One package (runtime and -dev together).
#
# The maintainer scripts (packaging/debian/, with an ldconfig trigger) create the system user `airlock` and
# /var/lib/airlock (0700, owned by it) on configure, and remove both on purge; both are
# idempotent and honour $DPKG_ROOT (tests/install/test_deb.sh runs them in a temporary root).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME airlock)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "airlock")
set(CPACK_PACKAGE_CONTACT "airlock maintainers <airlock@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "release broker: agents carry releases to production after signed human approval")
set(CPACK_PACKAGE_DESCRIPTION
"airlock routes protobuf messages among agents (orchestrator, qa,
deploy-manager, monitor, notifier); only a human's signed approval opens
production. This package holds the airlock command, the shared library
libairlock with its headers, the systemd unit, the default policy, man
pages and shell completions.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Install with DESTDIR staging and CMAKE_INSTALL_PREFIX=/usr: the unit's ExecStart is
# written at install time from CMAKE_INSTALL_PREFIX and must name /usr/bin/airlock
# (test_deb checks it, and that no file names the build or staging directory).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_STRIP_FILES ON)
# What the maintainer scripts run, and the headers' own dependencies for -dev use.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd | adduser, passwd")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libczmq-dev, libprotobuf-c-dev")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/debian/postinst
    ${CMAKE_CURRENT_LIST_DIR}/debian/postrm
    ${CMAKE_CURRENT_LIST_DIR}/debian/triggers)
include(CPack)
