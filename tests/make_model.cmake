# make-model's tokenizer: lowercase text over its alphabet round-trips, and
# every id but the specials decodes to letters, spaces or punctuation, so a
# random model's output reads as words (src/io/make_model.c).
add_test(NAME make_model_tokenizer
         COMMAND sh -c "set -e; d=make-model-tok; rm -rf $d; \"$0\" make-model --shape tiny --out $d >/dev/null
                        ids=$(\"$0\" tokenize -m $d --no-special 'Once upon a time, kazemu duro!' | head -1)
                        \"$0\" tokenize -m $d --decode $ids
                        \"$0\" tokenize -m $d --decode $(seq -s, 1 255) | LC_ALL=C grep -q '^[a-z .,!?]*$'
                        echo 'ok: ids 1..255 decode to letters, spaces and punctuation'"
                 $<TARGET_FILE:tpinfer_cli>)
set_tests_properties(make_model_tokenizer PROPERTIES
                     TIMEOUT 60 PASS_REGULAR_EXPRESSION "(^|\n)once upon a time, kazemu duro!\nok: ids 1..255 decode")
