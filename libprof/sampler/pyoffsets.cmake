# pyoffsets.cmake: builds the host program that reads the CPython 3.11 headers and generates py311_offsets.h for the CPython reader (pystack_int.h: pystack.c, pyopen.c).
# Included before profsample is defined; the top CMakeLists.txt attaches ${PY311_OFFSETS_HEADER} to profsample at its end.
pkg_check_modules(PY311 QUIET python-3.11)
if(PY311_FOUND)
  set(PY311_INCLUDE_DIRS ${PY311_INCLUDE_DIRS})
else()
  # Debian's libpython3.11-dev without its .pc file still puts the headers here.
  find_path(PY311_INCLUDE_DIRS Python.h PATHS /usr/include/python3.11 NO_DEFAULT_PATH)
endif()
if(NOT PY311_INCLUDE_DIRS)
  message(FATAL_ERROR "CPython 3.11 headers not found: install libpython3.11-dev (python3.11-dev)")
endif()

# The sampler's glob (libprof/sampler/*.c) also sees the generator: keep it out of profsample,
# and build the generator from a copy, since a source file's properties are per directory, not per target.
set(PYOFFSETS_GEN_SRC ${CMAKE_SOURCE_DIR}/libprof/sampler/pyoffsets_gen.c)
set_source_files_properties(${PYOFFSETS_GEN_SRC} PROPERTIES HEADER_FILE_ONLY TRUE)
configure_file(${PYOFFSETS_GEN_SRC} ${CMAKE_BINARY_DIR}/generated/pyoffsets_gen.c COPYONLY)

# Same compiler and target as the sampler, so the layout it prints is the one the reader (pystack.c, pyopen.c) reads.
add_executable(pyoffsets_gen ${CMAKE_BINARY_DIR}/generated/pyoffsets_gen.c)
target_include_directories(pyoffsets_gen PRIVATE ${PY311_INCLUDE_DIRS})
set_target_properties(pyoffsets_gen PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/generated)

set(PY311_OFFSETS_HEADER ${CMAKE_BINARY_DIR}/generated/py311_offsets.h)
add_custom_command(
  OUTPUT ${PY311_OFFSETS_HEADER}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/generated
  COMMAND pyoffsets_gen ${PY311_OFFSETS_HEADER}
  DEPENDS pyoffsets_gen
  COMMENT "Generating py311_offsets.h from the CPython 3.11 headers"
  VERBATIM)
add_custom_target(pyoffsets DEPENDS ${PY311_OFFSETS_HEADER})
