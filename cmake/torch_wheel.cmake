# Makes a LibTorch from PyTorch's wheel (site-packages/torch) build next to
# Debian's -dev packages. Included after find_package(Torch); a no-op for
# Debian's own LibTorch. Three clashes:
#
# 1. TorchConfig.cmake finds libc10 with find_library, which searches the
#    system folders before the package's own: with Debian's libtorch-dev
#    installed, TORCH_LIBRARIES names Debian's libc10.so next to the wheel's
#    libtorch. The wheel exports c10 as an imported target: use that.
# 2. The wheel's include folder carries protobuf 3.13's headers
#    (include/google/protobuf) for caffe2. Torch's include folders come
#    before /usr/include, so code that includes both torch and Debian's
#    protobuf 3.21 (the server's generated *.pb.h) would compile against the
#    wrong headers. The torch targets get an include folder of their own in
#    the build tree instead: links to every entry of the wheel's, less
#    google/. No torch header includes protobuf.
# 3. The wheel's libtorch.so exports the std::filesystem functions of the
#    newer libstdc++ it was built with, linked in statically (PyTorch issue
#    133437). It comes before libstdc++.so.6 in a binary's NEEDED list, so
#    the binary's own std::filesystem calls bind to those copies, which crash
#    here (remove_all jumps to address 0). Every binary names libstdc++.so.6
#    first, so the dynamic linker finds the system's definitions first.
set(_rmt_torch_include "${TORCH_INSTALL_PREFIX}/include")
# Debian's LibTorch lives in /usr: nothing to do.
if(NOT TARGET c10 OR
   _rmt_torch_include IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
  return()
endif()

add_link_options(
  "SHELL:-Wl,--push-state,--no-as-needed -lstdc++ -Wl,--pop-state")

string(FIND "${c10_LIBRARY}" "${TORCH_INSTALL_PREFIX}/" _rmt_at)
if(c10_LIBRARY AND NOT _rmt_at EQUAL 0)
  set(_rmt_libraries "")
  foreach(lib ${TORCH_LIBRARIES})
    if(lib STREQUAL c10_LIBRARY)
      set(lib c10)
    endif()
    list(APPEND _rmt_libraries "${lib}")
  endforeach()
  set(TORCH_LIBRARIES "${_rmt_libraries}")
endif()

if(EXISTS "${_rmt_torch_include}/google/protobuf")
  set(_rmt_overlay "${CMAKE_BINARY_DIR}/torch-include")
  file(MAKE_DIRECTORY "${_rmt_overlay}")
  file(GLOB _rmt_entries RELATIVE "${_rmt_torch_include}"
       "${_rmt_torch_include}/*")
  foreach(entry ${_rmt_entries})
    if(NOT entry STREQUAL "google" AND NOT EXISTS "${_rmt_overlay}/${entry}")
      file(CREATE_LINK "${_rmt_torch_include}/${entry}"
           "${_rmt_overlay}/${entry}" SYMBOLIC)
    endif()
  endforeach()
  foreach(target c10 c10_cuda torch_cpu torch_cuda torch)
    if(NOT TARGET ${target})
      continue()
    endif()
    get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT dirs)
      continue()
    endif()
    set(replaced "")
    foreach(dir ${dirs})
      string(REPLACE "${_rmt_torch_include}" "${_rmt_overlay}" dir "${dir}")
      list(APPEND replaced "${dir}")
    endforeach()
    set_target_properties(${target} PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${replaced}")
  endforeach()
  string(REPLACE "${_rmt_torch_include}" "${_rmt_overlay}" TORCH_INCLUDE_DIRS
         "${TORCH_INCLUDE_DIRS}")
endif()
