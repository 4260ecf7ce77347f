# utf8proc as the target utf8proc::utf8proc: through pkg-config where it is
# installed, else by its header and library alone. scripts/gpu.sh's machine
# has no pkg-config; there the unpacked Debian package is found through
# CMAKE_PREFIX_PATH like the other dependencies.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(UTF8PROC QUIET IMPORTED_TARGET libutf8proc)
endif()
if(TARGET PkgConfig::UTF8PROC)
  add_library(utf8proc::utf8proc ALIAS PkgConfig::UTF8PROC)
else()
  find_path(UTF8PROC_INCLUDE_DIR utf8proc.h REQUIRED)
  find_library(UTF8PROC_LIBRARY utf8proc REQUIRED)
  add_library(utf8proc::utf8proc UNKNOWN IMPORTED)
  set_target_properties(utf8proc::utf8proc PROPERTIES
    IMPORTED_LOCATION "${UTF8PROC_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${UTF8PROC_INCLUDE_DIR}")
endif()
