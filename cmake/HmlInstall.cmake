# Install rules and the CMake package config, so that an application can
#   find_package(hybridml REQUIRED)
#   target_link_libraries(app PRIVATE hybridml::runtime)
include(CMakePackageConfigHelpers)

install(TARGETS hml_base hml_runtime
  EXPORT hybridmlTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/hml DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT hybridmlTargets
  NAMESPACE hybridml::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hybridml)

configure_package_config_file(cmake/hybridmlConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/hybridmlConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hybridml)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/hybridmlConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/hybridmlConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/hybridmlConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hybridml)
