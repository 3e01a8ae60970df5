# The installed library used the way a program outside this tree uses it:
# pkg-config only, run against the installed libtpinfer.so (tests/install.sh).
set(install_cflags "")
if(TPI_SANITIZE)
  set(install_cflags "-fsanitize=address,undefined")
endif()
add_test(NAME install_pkgconfig
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/install.sh ${CMAKE_BINARY_DIR} ${CMAKE_INSTALL_LIBDIR}
                 ${CMAKE_SOURCE_DIR}/examples/tp_demo.c ${MPIEXEC_EXECUTABLE} ${TPI_MPI_FLAGS})
set_tests_properties(install_pkgconfig PROPERTIES TIMEOUT 180 ENVIRONMENT
                     "${TPI_MPI_ENV};CMAKE=${CMAKE_COMMAND};CC=${CMAKE_C_COMPILER};PKG_CONFIG=${PKG_CONFIG_EXECUTABLE};TPI_INSTALL_CFLAGS=${install_cflags}")
