# No include points up the layering of docs/DESIGN.md "Layering" (tests/layering.sh).
add_test(NAME layering_includes COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/layering.sh ${CMAKE_SOURCE_DIR})
