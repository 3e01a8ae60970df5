/* The Jinja subset of src/chat: every render of the real templates in
 * ../shared/chat-templates byte for byte (as transformers renders them),
 * then each construct against hand-written expectations (checked against
 * jinja2 3.1's rules), errors that name lines, and hostile templates that
 * must fail fast and cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "testutil.h"
#include "tpinfer.h"

/* strftime_now's time in the shared data: 2026-12-01 12:00:00 local time. */
static int64_t fixed_now(void)
{
    struct tm tm = {.tm_year = 2026 - 1900, .tm_mon = 11, .tm_mday = 1, .tm_hour = 12, .tm_isdst = -1};
    return (int64_t)mktime(&tm);
}

/* Renders src with messages and options; returns the code, text into *out (malloc'd) or the message. */
static int render_opts(const char *src, const char *messages, const tpi_chat_render_opts *o, char **out,
                       tpi_error *err)
{
    tpi_chat_template *t = NULL;
    *out = NULL;
    int rc = tpi_chat_template_parse(&t, src, strlen(src), "t.jinja", err);
    if (rc)
        return rc;
    size_t n;
    rc = tpi_chat_template_render(t, messages, strlen(messages), o, out, &n, err);
    if (!rc)
        assert_int_equal(n, strlen(*out));
    tpi_chat_template_free(t);
    return rc;
}

static const char *const conv = "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                                "{\"role\":\"user\",\"content\":\"Hi\"},"
                                "{\"role\":\"assistant\",\"content\":\"Hello!\"},"
                                "{\"role\":\"user\",\"content\":\"Bye\"}]";

/* Renders src against `conv` and the extra variables; asserts success and the text. */
static void expect_extra(const char *src, const char *extra, const char *want)
{
    tpi_chat_render_opts o = {.add_generation_prompt = 1, .bos_token = "<s>", .eos_token = "</s>",
                              .extra_json = extra, .now = fixed_now()};
    tpi_error err = {0};
    char *text;
    int rc = render_opts(src, conv, &o, &text, &err);
    if (rc)
        fail_msg("%s: %s", src, err.msg);
    if (strcmp(text, want))
        fail_msg("template %s\nwant [%s]\ngot  [%s]", src, want, text);
    free(text);
}

static void expect(const char *src, const char *want)
{
    expect_extra(src, NULL, want);
}

/* Asserts that src fails (at parse or render) with `code` and a message containing `part`. */
static void expect_error(const char *src, int code, const char *part)
{
    tpi_chat_render_opts o = {.add_generation_prompt = 1, .bos_token = "<s>", .now = fixed_now()};
    tpi_error err = {0};
    char *text;
    int rc = render_opts(src, conv, &o, &text, &err);
    if (rc != code || !strstr(err.msg, part))
        fail_msg("template %s\nwant code %d with [%s]\ngot code %d: %s", src, code, part, rc, err.msg);
    assert_null(text);
}

/* ---- the shared real templates ---- */

static void test_shared_templates(void **state)
{
    (void)state;
    const char *dir = *(const char **)*state;
    char *sub = tu_path(dir, "chat-templates");
    static const char *const names[] = {
        "HuggingFaceTB-SmolLM3-3B", "NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "Qwen-QwQ-32B",
        "Qwen-Qwen2.5-7B-Instruct", "Qwen-Qwen3-0.6B", "deepseek-ai-DeepSeek-R1-Distill-Llama-8B",
        "google-gemma-2-2b-it", "ibm-granite-granite-3.3-2B-Instruct", "meta-llama-Llama-3.1-8B-Instruct",
        "meta-llama-Llama-3.2-3B-Instruct", "microsoft-Phi-3.5-mini-instruct", "mistralai-Mistral-Nemo-Instruct-2407"};
    int total = 0, passed = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char file[256];
        snprintf(file, sizeof file, "%s.jinja", names[i]);
        size_t src_n, exp_n;
        char *src = tu_read_file(tu_in(sub, file), &src_n);
        snprintf(file, sizeof file, "%s.expected.json", names[i]);
        char *exp = tu_read_file(tu_in(sub, file), &exp_n);
        assert_non_null(src);
        assert_non_null(exp);
        tpi_chat_template *t = NULL;
        tpi_error err = {0};
        if (tpi_chat_template_parse(&t, src, src_n, names[i], &err))
            fail_msg("%s: %s", names[i], err.msg);
        cJSON *cases = cJSON_Parse(exp);
        assert_true(cJSON_IsArray(cases));
        int n_case = 0, ok = 0;
        for (cJSON *c = cases->child; c; c = c->next, n_case++) {
            char *msgs = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "messages"));
            cJSON *tools = cJSON_GetObjectItem(c, "tools");
            char *tools_s = tools ? cJSON_PrintUnformatted(tools) : NULL;
            tpi_chat_render_opts o = {
                .add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt")),
                .bos_token = cJSON_GetStringValue(cJSON_GetObjectItem(c, "bos_token")),
                .eos_token = cJSON_GetStringValue(cJSON_GetObjectItem(c, "eos_token")),
                .tools_json = tools_s, .now = fixed_now()};
            char *text = NULL;
            size_t len = 0;
            int rc = tpi_chat_template_render(t, msgs, strlen(msgs), &o, &text, &len, &err);
            const char *want = cJSON_GetStringValue(cJSON_GetObjectItem(c, "text"));
            const char *want_err = cJSON_GetStringValue(cJSON_GetObjectItem(c, "error"));
            if (want && !rc && len == strlen(want) && !memcmp(text, want, len))
                ok++;
            else if (want_err && rc == TPI_EINVAL && !strcmp(err.msg, want_err))
                ok++;
            else
                printf("%s case %d (%s): rc %d %s\n want [%s]\n got  [%s]\n", names[i], n_case,
                       cJSON_GetStringValue(cJSON_GetObjectItem(c, "conversation")), rc, rc ? err.msg : "",
                       want ? want : want_err, text ? text : "");
            free(text);
            free(msgs);
            free(tools_s);
        }
        printf("%-48s %d/%d renders match\n", names[i], ok, n_case);
        total += n_case, passed += ok;
        cJSON_Delete(cases);
        tpi_chat_template_free(t);
        free(src);
        free(exp);
    }
    free(sub);
    assert_int_equal(passed, total);
    assert_int_equal(total, 96);
}

/* load: chat_template.jinja first, then tokenizer_config.json's string or named list. */
static void test_load(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    tpi_chat_template *t = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_chat_template_load(&t, dir, &err), 0);
    assert_null(t);
    const char *cfg = "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"},"
                      " {\"name\": \"default\", \"template\": \"D{{ messages|length }}\"}]}";
    assert_int_equal(tu_write_file(tu_in(dir, "tokenizer_config.json"), cfg, strlen(cfg)), 0);
    assert_int_equal(tpi_chat_template_load(&t, dir, &err), 0);
    assert_non_null(t);
    char *text;
    assert_int_equal(tpi_chat_template_render(t, "[1,2]", 5, NULL, &text, NULL, &err), 0);
    assert_string_equal(text, "D2");
    free(text);
    tpi_chat_template_free(t);
    const char *jinja = "J{{ messages[0] }}\n";
    assert_int_equal(tu_write_file(tu_in(dir, "chat_template.jinja"), jinja, strlen(jinja)), 0);
    assert_int_equal(tpi_chat_template_load(&t, dir, &err), 0);
    assert_int_equal(tpi_chat_template_render(t, "[7]", 3, NULL, &text, NULL, &err), 0);
    assert_string_equal(text, "J7"); /* and the trailing newline is dropped, as jinja2 does */
    free(text);
    tpi_chat_template_free(t);
    /* an unsupported construct in the file names the file and line */
    const char *bad = "ok\n{% include 'x' %}";
    assert_int_equal(tu_write_file(tu_in(dir, "chat_template.jinja"), bad, strlen(bad)), 0);
    assert_int_equal(tpi_chat_template_load(&t, dir, &err), TPI_EUNSUPPORTED);
    assert_null(t);
    assert_non_null(strstr(err.msg, "chat_template.jinja:2: unsupported tag 'include'"));
    tu_rmdir(dir);
    free(dir);
}

/* `test_chat_template render T.jinja CASE.json`: prints the render of one
 * case ({messages, add_generation_prompt, bos_token, eos_token, tools,
 * extra}), or "ERROR code: message"; tests/chat_diff.py compares it with
 * jinja2. */
static int render_case(const char *tpl_path, const char *case_path)
{
    size_t n;
    char *src = tu_read_file(tpl_path, &n), *cs = tu_read_file(case_path, NULL);
    cJSON *c = cs ? cJSON_Parse(cs) : NULL;
    if (!src || !c) {
        fprintf(stderr, "cannot read %s or %s\n", tpl_path, case_path);
        return 2;
    }
    char *msgs = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "messages"));
    cJSON *tools = cJSON_GetObjectItem(c, "tools"), *extra = cJSON_GetObjectItem(c, "extra");
    char *tools_s = tools ? cJSON_PrintUnformatted(tools) : NULL, *extra_s = extra ? cJSON_PrintUnformatted(extra) : NULL;
    tpi_chat_render_opts o = {.add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt")),
                              .bos_token = cJSON_GetStringValue(cJSON_GetObjectItem(c, "bos_token")),
                              .eos_token = cJSON_GetStringValue(cJSON_GetObjectItem(c, "eos_token")),
                              .tools_json = tools_s, .extra_json = extra_s, .now = fixed_now()};
    tpi_chat_template *t = NULL;
    tpi_error err = {0};
    char *text = NULL;
    int rc = tpi_chat_template_parse(&t, src, n, tpl_path, &err);
    if (!rc)
        rc = tpi_chat_template_render(t, msgs, strlen(msgs), &o, &text, &n, &err);
    if (rc)
        printf("ERROR %d: %s", rc, err.msg);
    else
        fwrite(text, 1, n, stdout);
    free(text);
    tpi_chat_template_free(t);
    free(msgs), free(tools_s), free(extra_s), free(src), free(cs);
    cJSON_Delete(c);
    return 0;
}

/* `test_chat_template shared` renders the shared templates (skipped without
 * them); with no argument, the unit tests run. */
int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "render"))
        return render_case(argv[2], argv[3]);
    if (argc > 1 && !strcmp(argv[1], "shared")) {
        static const char *dir;
        if (!(dir = tu_shared_dir()))
            return TU_SKIP;
        const struct CMUnitTest shared[] = {cmocka_unit_test_prestate(test_shared_templates, (void *)&dir)};
        return cmocka_run_group_tests(shared, NULL, NULL);
    }
    (void)expect, (void)expect_error;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
