# The web console (console/, docs/CONSOLE.md), built and embedded in the custody binary.
#
# custody_console_assets(OUTPUT <file.cc>) declares the custom commands that
#   1. run `npm ci` in console/ when package-lock.json changed (a stamp file in the build tree),
#   2. run `vite build` into the build tree when a console source changed,
#   3. turn every file of that output into <file.cc> (cmake/console_assets_gen.cmake: path,
#      content type and bytes as string literals; no xxd), which defines api::ConsoleAssets().
# With CUSTODY_CONSOLE off (or no node/npm found) it generates an empty table instead, and the
# console routes answer that the console was not built.
option(CUSTODY_CONSOLE "Build the web console with npm and embed it (needs node and npm)" ON)

function(custody_console_assets)
  cmake_parse_arguments(C "" "OUTPUT" "" ${ARGN})
  set(src ${PROJECT_SOURCE_DIR}/console)
  set(gen ${PROJECT_SOURCE_DIR}/cmake/console_assets_gen.cmake)
  if(NOT CUSTODY_CONSOLE)
    add_custom_command(OUTPUT ${C_OUTPUT}
      COMMAND ${CMAKE_COMMAND} -DOUT=${C_OUTPUT} -P ${gen}
      DEPENDS ${gen}
      COMMENT "Console disabled (CUSTODY_CONSOLE=OFF): empty asset table")
    return()
  endif()
  find_program(CUSTODY_NPM npm)
  find_program(CUSTODY_NODE_FOR_CONSOLE node)
  if(NOT CUSTODY_NPM OR NOT CUSTODY_NODE_FOR_CONSOLE)
    message(FATAL_ERROR "the console needs node and npm (scripts/install-deps.sh installs them); "
                        "or configure with -DCUSTODY_CONSOLE=OFF to build without it")
  endif()
  set(bin ${CMAKE_CURRENT_BINARY_DIR}/console)
  set(ci_stamp ${bin}/npm_ci.stamp)
  set(dist ${bin}/dist)
  set(dist_stamp ${bin}/dist.stamp)
  add_custom_command(OUTPUT ${ci_stamp}
    COMMAND ${CUSTODY_NPM} ci --no-audit --no-fund --loglevel=error
    COMMAND ${CMAKE_COMMAND} -E touch ${ci_stamp}
    WORKING_DIRECTORY ${src}
    DEPENDS ${src}/package-lock.json ${src}/package.json
    COMMENT "Console: npm ci (package-lock.json changed)"
    VERBATIM)
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${src}/src/* ${src}/public/*)
  add_custom_command(OUTPUT ${dist_stamp}
    COMMAND ${CUSTODY_NODE_FOR_CONSOLE} node_modules/vite/bin/vite.js build --outDir ${dist}
            --emptyOutDir --logLevel warn
    COMMAND ${CMAKE_COMMAND} -E touch ${dist_stamp}
    WORKING_DIRECTORY ${src}
    DEPENDS ${ci_stamp} ${sources} ${src}/index.html ${src}/vite.config.ts ${src}/tsconfig.json
    COMMENT "Console: vite build"
    VERBATIM)
  add_custom_command(OUTPUT ${C_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -DDIST=${dist} -DOUT=${C_OUTPUT} -P ${gen}
    DEPENDS ${dist_stamp} ${gen}
    COMMENT "Console: embedding the built files"
    VERBATIM)
endfunction()
