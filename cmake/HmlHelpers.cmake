# Shared compile settings for hybridml's own targets.

# Warnings are errors in our code; third-party headers come in as SYSTEM.
function(hml_target_defaults target)
  # -Wno-restrict: GCC 12 reports false positives inside std::string at -O3 (GCC bug 105329).
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-unused-parameter
                         $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR})
endfunction()

# Device targets: no exceptions; sections per function so the shared library can drop unused
# code. No ISA flags: builds stay portable, and XNNPACK picks its kernels at run time.
function(hml_device_target target)
  hml_target_defaults(${target})
  target_compile_options(${target} PRIVATE -fno-exceptions -ffunction-sections -fdata-sections)
endfunction()

# Device targets off the inference fast path (OTA, storage, sync, the SDK's router, store,
# collector, telemetry and C ABI) are optimised for size: their costs are microseconds against a
# model run or milliseconds against the network, and at -O3 the whole device SDK measured
# 2,070,536 bytes stripped, over its 2 MB budget (bench/footprint.sh). The last -O flag wins, so
# this overrides the build type's -O3 for these targets only; the runtime keeps -O3.
function(hml_size_optimised target)
  target_compile_options(${target} PRIVATE -Os)
endfunction()

# Adds a GoogleTest executable registered with CTest: hml_test(NAME SOURCES... LIBS ...).
function(hml_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  hml_target_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300)
endfunction()
