#ifndef TPI_TOOLS_CLI_H
#define TPI_TOOLS_CLI_H
/* Helpers shared by the tpinfer commands. */
#include <stdint.h>

#include "tpinfer.h"

/* Parses "1,2,3" into a malloc'd array; prints an error naming `what` and
 * returns -1 on a malformed list. */
int cli_parse_ids(const char *s, const char *what, int32_t **ids, int64_t *n);
/* Prints "tpinfer <cmd>: <msg>" (prefixed with the rank in a multi-rank job)
 * and returns the exit code 1. In a multi-rank job it ends every rank, so a
 * failing rank never leaves the others waiting in a collective. */
int cli_fail(tpi_comm *comm, const char *cmd, const tpi_error *err);
/* Creates the communicator for this process ("auto"). */
int cli_comm(tpi_comm **comm, int *argc, char ***argv, const char *cmd);
#endif
