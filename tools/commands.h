#ifndef TPI_TOOLS_COMMANDS_H
#define TPI_TOOLS_COMMANDS_H
/* Each `tpinfer <command>` is one function in tools/cmd_<command>.c; it returns
 * the process exit code (0 ok, 1 runtime error, 2 usage error). */
int cmd_logits(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_make_model(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
#endif
