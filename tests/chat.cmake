# Chat templates (src/chat): the constructs, errors and limits; and, as its own
# test so that it can report itself skipped, the renders of the real templates
# in ../shared/chat-templates.
tpi_test(test_chat_template SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_chat_template.c LIBS tpi_chat tpi_core
         PkgConfig::CJSON)
add_test(NAME test_chat_template_shared COMMAND test_chat_template shared)
set_tests_properties(test_chat_template_shared PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
