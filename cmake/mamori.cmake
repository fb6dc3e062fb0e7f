# Helpers shared by every component's CMakeLists.txt.

# mamori_library(NAME SOURCES a.cc b.cc DEPS lib1 lib2)
# Defines the static library mamori_NAME. Sources ending in _test.cc are ignored.
function(mamori_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(mamori_${name} STATIC ${ARG_SOURCES})
  target_link_libraries(mamori_${name} PUBLIC ${ARG_DEPS})
  set_property(GLOBAL APPEND PROPERTY MAMORI_LIBRARIES mamori_${name})
endfunction()

# mamori_test(NAME SOURCES a_test.cc DEPS mamori_x [LABELS unit])
# One GoogleTest binary, registered with CTest by test name.
function(mamori_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  gtest_discover_tests(${name} PROPERTIES LABELS "${ARG_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()

# mamori_fuzz(NAME SOURCES fuzz.cc DEPS mamori_x)
# A libFuzzer target; its seed corpus lives in fuzz/corpus/NAME.
function(mamori_fuzz name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()

include(GoogleTest)
