#!/usr/bin/env bash
# Runs its arguments with every "{rank}" replaced by this process's MPI rank,
# so a test can give one rank a different (broken) model directory, as a
# machine with a corrupt copy would.
rank=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}
exec "${@//\{rank\}/$rank}"
