# Warnings and sanitizers, applied per target through one interface library so
# they reach every zfarm library, executable and test, and nothing else.
add_library(zfarm_build_flags INTERFACE)
target_compile_options(zfarm_build_flags INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                       -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual)
if(ZFARM_WERROR)
  target_compile_options(zfarm_build_flags INTERFACE -Werror)
endif()
if(ZFARM_SANITIZER)
  string(REPLACE "," ";" _zfarm_sanitizers "${ZFARM_SANITIZER}")
  foreach(_san IN LISTS _zfarm_sanitizers)
    if(NOT _san MATCHES "^(address|undefined|thread|leak)$")
      message(FATAL_ERROR "ZFARM_SANITIZER: unknown sanitizer '${_san}'")
    endif()
  endforeach()
  string(REPLACE ";" "," _zfarm_san_flag "${_zfarm_sanitizers}")
  target_compile_options(zfarm_build_flags INTERFACE -fsanitize=${_zfarm_san_flag}
                         -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(zfarm_build_flags INTERFACE -fsanitize=${_zfarm_san_flag})
endif()
if(ZFARM_FUZZ)
  # Coverage for libFuzzer in every zfarm target; the fuzz targets add the
  # fuzzer's main themselves.
  target_compile_options(zfarm_build_flags INTERFACE -fsanitize=fuzzer-no-link)
endif()
