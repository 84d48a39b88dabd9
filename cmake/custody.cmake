# custody_module(NAME SOURCES ... DEPS ... TESTS ... TEST_DEPS ...)
# Declares the library custody_<NAME> (alias custody::<NAME>) and, when tests are enabled, one
# GoogleTest binary custody_<NAME>_test built from TESTS, whose cases are registered with CTest.
function(custody_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;TESTS;TEST_DEPS" ${ARGN})
  add_library(custody_${name} STATIC ${M_SOURCES})
  add_library(custody::${name} ALIAS custody_${name})
  target_include_directories(custody_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(custody_${name} PUBLIC ${M_DEPS})
  if(CUSTODY_BUILD_TESTS AND M_TESTS)
    add_executable(custody_${name}_test ${M_TESTS})
    target_link_libraries(custody_${name}_test PRIVATE custody_${name} ${M_TEST_DEPS}
                          GTest::gmock GTest::gtest_main)
    gtest_discover_tests(custody_${name}_test
      DISCOVERY_MODE PRE_TEST
      PROPERTIES ENVIRONMENT "CUSTODY_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  endif()
endfunction()

# custody_fuzzer(NAME SOURCES ... DEPS ...)
# Declares the libFuzzer target custody_<NAME>_fuzz, only when CUSTODY_FUZZ is on (the fuzz
# preset). Every fuzzer lands in <build>/fuzz/; its seed corpus is fuzz/corpus/<NAME>/ and
# scripts/fuzz.sh runs it. The target `custody_fuzzers` builds them all.
function(custody_fuzzer name)
  if(NOT CUSTODY_FUZZ)
    return()
  endif()
  cmake_parse_arguments(F "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(custody_${name}_fuzz ${F_SOURCES})
  target_link_libraries(custody_${name}_fuzz PRIVATE ${F_DEPS})
  target_link_options(custody_${name}_fuzz PRIVATE -fsanitize=fuzzer)
  set_target_properties(custody_${name}_fuzz PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/fuzz)
  add_dependencies(custody_fuzzers custody_${name}_fuzz)
endfunction()
