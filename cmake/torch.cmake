# Finds LibTorch and checks that what was found can be linked with the rest of the build.
#
# Two LibTorch builds are first class (README, "Building against your own PyTorch"): Debian's
# libtorch-dev (1.13, CPU; found with no hints) and the one inside a PyPI `torch` wheel (2.x with
# CUDA; found through CMAKE_PREFIX_PATH = torch.utils.cmake_prefix_path, or Torch_DIR).
#
# Sets ABLATE_CUDA (ON or OFF) from the cache option ABLATE_WITH_CUDA (AUTO, ON, OFF).

# A wheel's TorchConfig.cmake finds its own libraries with find_library(... PATHS <wheel>/lib),
# and PATHS come after the system directories: on a machine that also has Debian's libtorch-dev,
# the wheel's headers would be linked against Debian's libc10.so. Naming the wheel's root as
# Torch_ROOT makes it the first place those find_library calls look (CMP0074).
if(NOT DEFINED Torch_ROOT)
  if(Torch_DIR)
    set(_ablate_torch_config_dir "${Torch_DIR}")
  else()
    set(_ablate_hints)
    foreach(_prefix IN LISTS CMAKE_PREFIX_PATH)
      list(APPEND _ablate_hints "${_prefix}/Torch" "${_prefix}/share/cmake/Torch")
    endforeach()
    find_path(_ablate_torch_config_dir TorchConfig.cmake HINTS ${_ablate_hints}
              NO_DEFAULT_PATH NO_CACHE)
  endif()
  if(_ablate_torch_config_dir AND EXISTS "${_ablate_torch_config_dir}/../../../lib")
    get_filename_component(Torch_ROOT "${_ablate_torch_config_dir}/../../.." ABSOLUTE)
  endif()
endif()

find_package(Torch REQUIRED)

# Every library file LibTorch asks us to link must come from the LibTorch whose headers we use.
foreach(_lib IN LISTS TORCH_LIBRARIES)
  if(IS_ABSOLUTE "${_lib}" AND EXISTS "${_lib}")
    file(REAL_PATH "${_lib}" _real)
    file(REAL_PATH "${TORCH_INSTALL_PREFIX}" _prefix_real)
    string(FIND "${_real}" "${_prefix_real}/" _at)
    string(FIND "${_lib}" "${TORCH_INSTALL_PREFIX}/" _at_unresolved)
    if(NOT _at EQUAL 0 AND NOT _at_unresolved EQUAL 0 AND _lib MATCHES "/lib(c10|torch)[^/]*$")
      message(FATAL_ERROR
        "ablate: LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX} would link ${_lib}, which "
        "belongs to another LibTorch. Configure in a fresh build folder with "
        "-DTorch_ROOT=${TORCH_INSTALL_PREFIX}, or remove the other LibTorch.")
    endif()
  endif()
endforeach()

# The C++ ABI. yaml-cpp, Boost, SQLiteCpp, GoogleTest and Google Benchmark come from Debian and
# use the compiler's default std::string (_GLIBCXX_USE_CXX11_ABI=1). A LibTorch built with the
# old ABI links but cannot pass strings to them, so find out now: a tiny program built the way
# ours are (compiler defaults, LibTorch's headers) must link against LibTorch's c10.
if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
  set(_ablate_abi_ok FALSE)
  set(_ablate_abi_log "TorchConfig.cmake sets -D_GLIBCXX_USE_CXX11_ABI=0 (TORCH_CXX_FLAGS)")
elseif(DEFINED ABLATE_TORCH_ABI_OK AND ABLATE_TORCH_ABI_OK_FOR STREQUAL "${TORCH_INSTALL_PREFIX}")
  set(_ablate_abi_ok ${ABLATE_TORCH_ABI_OK})
else()
  set(_ablate_abi_src "${CMAKE_BINARY_DIR}/CMakeFiles/ablate_abi_check.cpp")
  file(WRITE "${_ablate_abi_src}"
    "#include <c10/core/Device.h>\n#include <string>\n"
    "int main(int argc, char**) { std::string s(argc > 5 ? \"cuda\" : \"cpu\");\n"
    "  return c10::Device(s).is_cpu() ? 0 : 1; }\n")
  list(GET TORCH_INCLUDE_DIRS 0 _ablate_torch_include)
  try_compile(_ablate_abi_ok "${CMAKE_BINARY_DIR}/CMakeFiles/ablate_abi_check"
    SOURCES "${_ablate_abi_src}"
    CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${_ablate_torch_include}"
    LINK_LIBRARIES "${c10_LIBRARY}"
    CXX_STANDARD 17
    OUTPUT_VARIABLE _ablate_abi_log)
  set(ABLATE_TORCH_ABI_OK ${_ablate_abi_ok} CACHE INTERNAL "")
  set(ABLATE_TORCH_ABI_OK_FOR "${TORCH_INSTALL_PREFIX}" CACHE INTERNAL "")
endif()
if(NOT _ablate_abi_ok)
  message(FATAL_ERROR
    "ablate: LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX} does not use the C++11 ABI "
    "(_GLIBCXX_USE_CXX11_ABI=1) that this compiler and Debian's yaml-cpp, Boost and GoogleTest "
    "use, so they cannot be linked together. Use a LibTorch built with the C++11 ABI: PyPI "
    "`torch` wheels from 2.7 on, or the 'cxx11 ABI' LibTorch archive.\n${_ablate_abi_log}")
endif()

if(ABLATE_WITH_CUDA STREQUAL "AUTO")
  if(CAFFE2_USE_CUDA OR TORCH_CUDA_LIBRARIES)
    set(ABLATE_CUDA ON)
  else()
    set(ABLATE_CUDA OFF)
  endif()
elseif(ABLATE_WITH_CUDA)
  if(NOT (CAFFE2_USE_CUDA OR TORCH_CUDA_LIBRARIES))
    message(FATAL_ERROR "ABLATE_WITH_CUDA=ON but the LibTorch found (${Torch_DIR}) has no CUDA")
  endif()
  set(ABLATE_CUDA ON)
else()
  set(ABLATE_CUDA OFF)
endif()

# A wheel's LibTorch loads the CUDA runtime it was built with (from its nvidia-* packages), while
# CMake compiles against the CUDA toolkit it finds (CUDA_HOME, nvcc on PATH, /usr/local/cuda):
# two major versions would put two CUDA runtimes in one process. The wheel's version.py says which
# CUDA it was built with.
if(ABLATE_CUDA AND EXISTS "${TORCH_INSTALL_PREFIX}/version.py" AND CUDAToolkit_VERSION_MAJOR)
  file(STRINGS "${TORCH_INSTALL_PREFIX}/version.py" _ablate_cuda_line REGEX "^cuda[:=]")
  if(_ablate_cuda_line MATCHES "'([0-9]+)\\.([0-9]+)'")
    set(ABLATE_TORCH_CUDA_VERSION "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}")
    if(NOT CMAKE_MATCH_1 EQUAL CUDAToolkit_VERSION_MAJOR)
      # ABLATE_ALLOW_CUDA_MISMATCH=ON demotes this to a warning, for someone who knows better.
      set(_ablate_level FATAL_ERROR)
      if(ABLATE_ALLOW_CUDA_MISMATCH)
        set(_ablate_level WARNING)
      endif()
      message(${_ablate_level}
        "ablate: PyTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX} was built with CUDA "
        "${ABLATE_TORCH_CUDA_VERSION}, but the CUDA toolkit CMake found (${CUDAToolkit_VERSION} in "
        "${CUDAToolkit_BIN_DIR}) is another major version. Point CMake at a CUDA "
        "${CMAKE_MATCH_1}.x toolkit (CUDA_HOME=/usr/local/cuda-${ABLATE_TORCH_CUDA_VERSION} or "
        "-DCUDAToolkit_ROOT=...), or install the torch wheel built for CUDA "
        "${CUDAToolkit_VERSION_MAJOR} (pip install torch --index-url "
        "https://download.pytorch.org/whl/cu${CUDAToolkit_VERSION_MAJOR}<minor>), in a fresh build "
        "folder (or -DABLATE_ALLOW_CUDA_MISMATCH=ON to go on regardless).")
    endif()
  endif()
endif()
set(_ablate_cuda_note "")
if(ABLATE_TORCH_CUDA_VERSION)
  set(_ablate_cuda_note " (LibTorch built with CUDA ${ABLATE_TORCH_CUDA_VERSION})")
endif()
message(STATUS "ablate: LibTorch ${Torch_VERSION} from ${Torch_DIR}; CUDA ${ABLATE_CUDA}"
               "${_ablate_cuda_note}")

# ablate::torch: what a target that uses LibTorch links. PyPI's libtorch.so carries and exports
# its own copy of parts of std::filesystem (built with the wheel's older toolchain); when
# libtorch.so comes before libstdc++.so in a program's list of libraries, the program's calls to
# std::filesystem::remove_all bind to that copy and crash. Naming libstdc++ first keeps every
# std:: symbol with the compiler's own library.
add_library(ablate_torch INTERFACE)
add_library(ablate::torch ALIAS ablate_torch)
target_link_libraries(ablate_torch INTERFACE stdc++ ${TORCH_LIBRARIES})
