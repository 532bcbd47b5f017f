# Installs the binaries, the embeddable worker library with its public headers,
# and a CMake package so apps can find_package(zfarm) and link zfarm::worker.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS zfarm-ventilator zfarm-worker zfarm-sink zfarm-keygen RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS zfarm_common zfarm_worker EXPORT zfarm-targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY common/include/zfarm worker/include/zfarm DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        PATTERN "*.in" EXCLUDE)
install(EXPORT zfarm-targets NAMESPACE zfarm:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/zfarm)
configure_package_config_file(cmake/zfarmConfig.cmake.in ${PROJECT_BINARY_DIR}/zfarmConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/zfarm)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/zfarmConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/zfarmConfig.cmake ${PROJECT_BINARY_DIR}/zfarmConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/zfarm)
