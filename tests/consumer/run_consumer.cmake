# Installs linkstyle from BUILD_DIR into a fresh prefix under WORK_DIR and runs the installed
# command line; then configures and builds the consumer project (CONSUMER_SOURCE_DIR) against the
# prefix with find_package(linkstyle), runs it on MODEL and checks that it printed EXPECTED.
# Any failure stops with an error (and a non-zero exit status).
# Usage: cmake -DBUILD_DIR=... -DCONSUMER_SOURCE_DIR=... -DWORK_DIR=... -DMODEL=... -DEXPECTED=...
#        [-DGENERATOR=...] [-DCXX_COMPILER=...] [-DCOMPILER_LAUNCHER=...] [-DLINKER_FLAGS=...]
#        -P run_consumer.cmake
cmake_minimum_required(VERSION 3.18)

foreach(required BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR MODEL EXPECTED)
  if(NOT DEFINED ${required} OR "${${required}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: pass -D${required}=...")
  endif()
endforeach()

# Runs a command, echoes its output, and stops on a non-zero exit status.
function(run_step name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
  message("-- ${name}\n${output}")
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${name} failed (${status})")
  endif()
  set(step_output "${output}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})

run_step("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
if(NOT EXISTS ${prefix}/include/linkstyle/models.hpp)
  message(FATAL_ERROR "the install has no include/linkstyle/models.hpp")
endif()
run_step("installed command line" ${prefix}/bin/linkstyle --version)

set(configure_options -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
if(GENERATOR)
  list(APPEND configure_options -G ${GENERATOR})
endif()
if(CXX_COMPILER)
  list(APPEND configure_options -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
if(COMPILER_LAUNCHER)
  list(APPEND configure_options -DCMAKE_CXX_COMPILER_LAUNCHER=${COMPILER_LAUNCHER})
endif()
if(LINKER_FLAGS)
  # A sanitized build of the library needs its runtime in the consumer's link too.
  list(APPEND configure_options "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}")
endif()
run_step("configure" ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${consumer_build} ${configure_options})
run_step("build" ${CMAKE_COMMAND} --build ${consumer_build})

run_step("run" ${consumer_build}/linkstyle_consumer ${MODEL})
if(NOT step_output MATCHES "${EXPECTED}")
  message(FATAL_ERROR "the consumer's output does not contain '${EXPECTED}'")
endif()
