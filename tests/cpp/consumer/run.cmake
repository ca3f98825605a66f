# cmake -P script for the cpp_find_package test: install, configure the consumer with
# CMAKE_PREFIX_PATH pointing at the install, build it and run it.
file(REMOVE_RECURSE "${PREFIX}" "${CONSUMER_BUILD}" "${RUN_DIR}")

function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed (${rc}): ${ARGN}")
    endif()
endfunction()

run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}")
foreach(f include/expman.hpp include/expman.h lib/cmake/expman/expmanConfig.cmake)
    if(NOT EXISTS "${PREFIX}/${f}")
        message(FATAL_ERROR "cmake --install did not install ${f}")
    endif()
endforeach()
run("${CMAKE_COMMAND}" -S "${CONSUMER_SRC}" -B "${CONSUMER_BUILD}" -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX}" "-DCMAKE_PREFIX_PATH=${PREFIX}")
run("${CMAKE_COMMAND}" --build "${CONSUMER_BUILD}")
run("${CONSUMER_BUILD}/consumer" "${RUN_DIR}")
