/* The C counterpart of transformers' tensor-parallel snippet:
 *
 *   model = AutoModelForCausalLM.from_pretrained(model_id, tp_plan="auto")
 *   inputs = tokenizer("Can I help", return_tensors="pt").input_ids
 *   outputs = model(inputs)
 *
 * Run it as N ranks: mpirun -np 2 ./tp_demo MODEL_DIR ["prompt"]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpinfer.h"

int main(int argc, char **argv)
{
    tpi_comm *comm;
    tpi_error err = {0};
    /* The launcher (mpirun) sets up the distributed environment; without one
     * MPI makes this a world of one rank. */
    tpi_comm_opts comm_opts = {.kind = "mpi"};
    if (tpi_comm_create(&comm, &comm_opts, &argc, &argv, &err)) {
        fprintf(stderr, "tp_demo: %s\n", err.msg);
        return 1;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: tp_demo MODEL_DIR [prompt]\n");
        tpi_comm_free(comm);
        return 2;
    }
    const char *dir = argv[1], *prompt = argc > 2 ? argv[2] : "Can I help";
    int rank = tpi_comm_rank(comm);

    tpi_model *model = NULL;
    tpi_tokenizer *tok = NULL;
    tpi_load_opts opts = {.comm = comm, .tp_plan_file = NULL}; /* "auto" plan */
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (tpi_model_load(&model, dir, &opts, &err) || tpi_tokenizer_load(&tok, dir, &err) ||
        tpi_tokenizer_encode(tok, prompt, strlen(prompt), 1, &ids, &n_ids, &err)) {
        fprintf(stderr, "tp_demo rank %d: %s\n", rank, err.msg);
        tpi_comm_abort(comm, 1);
    }
    tpi_model_info info;
    tpi_model_get_info(model, &info);
    float *logits = rank == 0 ? malloc((size_t)info.vocab_size * sizeof *logits) : NULL;
    tpi_kv *kv;
    int64_t n = (int64_t)n_ids;
    if (tpi_kv_create(&kv, model, 1, n, &err) ||
        tpi_model_forward(model, kv, ids, &n, TPI_LOGITS_LAST, logits, &err)) {
        fprintf(stderr, "tp_demo rank %d: %s\n", rank, err.msg);
        tpi_comm_abort(comm, 1);
    }
    printf("rank %d of %d holds %.2f MB of weights\n", rank, tpi_comm_size(comm), info.weight_bytes / 1e6);
    if (rank == 0) {
        printf("prompt \"%s\" -> %zu tokens; top next tokens:\n", prompt, n_ids);
        for (int k = 0; k < 5; k++) {
            int64_t best = 0;
            for (int64_t j = 1; j < info.vocab_size; j++)
                if (logits[j] > logits[best])
                    best = j;
            const char *piece = tpi_tokenizer_piece(tok, (int32_t)best);
            printf("  %6lld %-12s %.4f\n", (long long)best, piece ? piece : "?", logits[best]);
            logits[best] = -1e30f;
        }
    }
    free(logits);
    free(ids);
    tpi_kv_free(kv);
    tpi_tokenizer_free(tok);
    tpi_model_free(model);
    tpi_comm_free(comm);
    return 0;
}
