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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* Renders src against messages (NULL: `conv`) and the extra variables; asserts success and the text. */
static void expect_full(const char *src, const char *messages, const char *extra, const char *want)
{
    tpi_chat_render_opts o = {.add_generation_prompt = 1, .bos_token = "<s>", .eos_token = "</s>",
                              .extra_json = extra, .now = fixed_now()};
    tpi_error err = {0};
    char *text;
    int rc = render_opts(src, messages ? messages : conv, &o, &text, &err);
    if (rc)
        fail_msg("%s: %s", src, err.msg);
    if (strcmp(text, want))
        fail_msg("template %s\nwant [%s]\ngot  [%s]", src, want, text);
    free(text);
}

static void expect(const char *src, const char *want)
{
    expect_full(src, NULL, NULL, want);
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


/* ---- constructs, against jinja2's renders ---- */

static const struct {
    const char *src, *want, *extra, *messages;
} constructs[] = {
#include "chat_constructs.inc"
};

static void test_constructs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof constructs / sizeof *constructs; i++)
        expect_full(constructs[i].src, constructs[i].messages, constructs[i].extra, constructs[i].want);
}

/* Whitespace control by hand: trim_blocks, lstrip_blocks, `-` and `+`. */
static void test_whitespace(void **state)
{
    (void)state;
    expect("a\n{% if true %}\nb\n{% endif %}\nc", "a\nb\nc");           /* trim_blocks eats one newline */
    expect("a\n    {% if true %}\nb\n    {% endif %}\nc", "a\nb\nc");   /* lstrip_blocks the indent */
    expect("a  {{- 'b' -}}  \n c", "abc");
    expect("a\n  {%+ if true %}b{% endif +%}\nc", "a\n  b\nc");
    expect("x {# c #}\ny", "x y");
    expect("  {# c #}\ny", "y");
    expect("a {% if true %}b{% endif %} c", "a b c"); /* not at a line start: no lstrip */
    expect("{{ 'x' }}\n{{ 'y' }}\n", "x\ny");        /* {{ }} keeps its newline; one trailing newline goes */
    expect("a\r\nb{% if true %}\r\nc{% endif %}", "a\nbc");
    expect("{% raw %}\n{{ x }}{% endraw %}\nz", "\n{{ x }}z");
}

/* Errors at parse time are TPI_EUNSUPPORTED (outside the subset) or TPI_EFORMAT (malformed), with the line. */
static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("a\nb\n{% include 'x.jinja' %}", TPI_EUNSUPPORTED, "t.jinja:3: unsupported tag 'include'");
    expect_error("{% extends 'base' %}", TPI_EUNSUPPORTED, "t.jinja:1: unsupported tag 'extends'");
    expect_error("{% call foo() %}x{% endcall %}", TPI_EUNSUPPORTED, "unsupported tag 'call'");
    expect_error("\n\n\n{{ x | frobnicate }}", TPI_EUNSUPPORTED, "t.jinja:4: unknown filter 'frobnicate'");
    expect_error("\n{% if x is prime %}{% endif %}", TPI_EUNSUPPORTED, "t.jinja:2: unknown test 'prime'");
    expect_error("{% for x in y recursive %}{% endfor %}", TPI_EUNSUPPORTED, "recursive");
    expect_error("{{ f(*args) }}", TPI_EUNSUPPORTED, "unpacking");
    expect_error("line1\n{% for x in xs %}\n{{ x }}", TPI_EFORMAT, "missing {% endfor %} for the tag on line 2");
    expect_error("{% endif %}", TPI_EFORMAT, "'endif' without the tag it closes");
    expect_error("{% break %}", TPI_EFORMAT, "'break' outside a for loop");
    expect_error("{% macro m() %}{% break %}{% endmacro %}", TPI_EFORMAT, "outside a for loop");
    expect_error("\n{{ 1 + }}", TPI_EFORMAT, "t.jinja:2: expected an expression");
    expect_error("{{ 'abc }}", TPI_EUNSUPPORTED, "unterminated string");
    expect_error("{# never closed", TPI_EUNSUPPORTED, "unclosed comment");
    expect_error("{{ x ", TPI_EUNSUPPORTED, "unclosed {{");
    expect_error("{{ a ; b }}", TPI_EUNSUPPORTED, "unexpected character ';'");
}

/* Errors while rendering: raise_exception carries the template's message as is; others name the line. */
static void test_render_errors(void **state)
{
    (void)state;
    expect_error("{% if messages[0].role == 'system' %}{{ raise_exception('No system role: ' ~ messages[0].content) }}"
                 "{% endif %}",
                 TPI_EINVAL, "No system role: Be brief.");
    tpi_error err = {0};
    char *text;
    int rc = render_opts("{{ raise_exception('exact') }}", conv, NULL, &text, &err);
    assert_int_equal(rc, TPI_EINVAL);
    assert_string_equal(err.msg, "exact");
    expect_error("a\nb\n{{ nothing.attr }}", TPI_EINVAL, "t.jinja:3: 'nothing' is undefined");
    expect_error("{{ messages[0].nothing.attr }}", TPI_EINVAL, "'dict object' has no attribute 'nothing'");
    expect_error("{{ messages[9].role }}", TPI_EINVAL, "'list object' has no element 9");
    expect_error("\n{{ 1 + 'a' }}", TPI_EINVAL, "t.jinja:2: unsupported operand type(s) for +: 'int' and 'str'");
    expect_error("{{ 1 // 0 }}", TPI_EINVAL, "division or modulo by zero");
    expect_error("{% set ns = 1 %}{% set ns.x = 2 %}", TPI_EINVAL, "non-namespace");
    expect_error("{{ [1].append(2) }}", TPI_EINVAL, "unsafe");
    expect_error("{% for x in none %}{% endfor %}", TPI_EINVAL, "not iterable");
    expect_error("{{ x | tojson }}", TPI_EINVAL, "not JSON serializable");
    expect_error("{{ 9223372036854775807 + 1 }}", TPI_EINVAL, "integer overflow");
}

static void test_bad_inputs(void **state)
{
    (void)state;
    tpi_chat_template *t = NULL;
    tpi_error err = {0};
    char *text = (char *)1;
    assert_int_equal(tpi_chat_template_parse(&t, "{{ messages|length }}", 21, "t", &err), 0);
    assert_int_equal(tpi_chat_template_render(t, "{\"role\": 1}", 11, NULL, &text, NULL, &err), TPI_EINVAL);
    assert_null(text);
    assert_non_null(strstr(err.msg, "messages: expected a JSON array"));
    assert_int_equal(tpi_chat_template_render(t, "[1,", 3, NULL, &text, NULL, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "messages: unexpected end"));
    assert_int_equal(tpi_chat_template_render(t, "[1] x", 5, NULL, &text, NULL, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "trailing"));
    tpi_chat_render_opts o = {.tools_json = "{}"};
    assert_int_equal(tpi_chat_template_render(t, "[]", 2, &o, &text, NULL, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "tools: expected a JSON array"));
    o = (tpi_chat_render_opts){.extra_json = "[1]"};
    assert_int_equal(tpi_chat_template_render(t, "[]", 2, &o, &text, NULL, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "extra variables: expected a JSON object"));
    /* nesting past the JSON limit is refused, not recursed into */
    char deep[4096];
    memset(deep, '[', 2000);
    memset(deep + 2000, ']', 2000);
    deep[4000] = 0;
    assert_int_equal(tpi_chat_template_render(t, deep, 4000, NULL, &text, NULL, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "nested deeper"));
    /* the length given bounds the read: the text need not end in NUL */
    assert_int_equal(tpi_chat_template_render(t, "[1, 2]garbage", 6, NULL, &text, NULL, &err), 0);
    assert_string_equal(text, "2");
    free(text);
    tpi_chat_template_free(t);
    tpi_chat_template_free(NULL);
}

/* Hostile templates end in TPI_ELIMIT (or a clean error), fast. */
static void test_hostile(void **state)
{
    (void)state;
    static char src[1 << 16];
    clock_t start = clock();
    /* expressions nested past the parser's depth */
    memset(src, '(', 5000);
    strcpy(src + 5000, "1");
    memset(src + 5001, ')', 5000);
    src[10001] = 0;
    char *wrapped = malloc(sizeof src + 8);
    snprintf(wrapped, sizeof src + 8, "{{ %s }}", src);
    expect_error(wrapped, TPI_ELIMIT, "nesting deeper");
    /* blocks nested past it */
    src[0] = 0;
    for (int i = 0; i < 1000; i++)
        strcat(src, "{% if 1 %}");
    expect_error(src, TPI_ELIMIT, "nesting deeper");
    free(wrapped);
    /* endless work: loops multiply, macros recurse, strings double, lists nest */
    expect_error("{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}", TPI_ELIMIT,
                 "steps");
    expect_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", TPI_ELIMIT, "nesting deeper");
    expect_error("{% macro f(n) %}{{ f(n) ~ f(n) }}{% endmacro %}{{ f(1) }}", TPI_ELIMIT, "nesting deeper");
    expect_error("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                 "{% endfor %}",
                 TPI_ELIMIT, "MiB");
    expect_error("{{ 'x' * 100000000000 }}", TPI_ELIMIT, "MiB");
    expect_error("{{ [1, 2] * 100000000000 }}", TPI_ELIMIT, "items");
    expect_error("{{ range(100000000000) | list }}", TPI_ELIMIT, "items");
    expect_error("{% for i in range(1000000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}", TPI_ELIMIT,
                 "16 MiB");
    expect_error("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}"
                 "{{ ns.l | tojson }}",
                 TPI_ELIMIT, "nesting deeper");
    expect_error("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}"
                 "{{ ns.l == ns.l }}",
                 TPI_ELIMIT, "nesting deeper");
    double secs = (double)(clock() - start) / CLOCKS_PER_SEC;
    printf("hostile templates refused in %.2f s of CPU\n", secs);
    assert_true(secs < 20);
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
    /* a source past 4 MiB is refused before it is read; a FIFO is not opened */
    assert_int_equal(truncate(tu_in(dir, "chat_template.jinja"), 5 << 20), 0);
    assert_int_equal(tpi_chat_template_load(&t, dir, &err), TPI_ELIMIT);
    assert_int_equal(unlink(tu_in(dir, "chat_template.jinja")), 0);
    assert_int_equal(mkfifo(tu_in(dir, "chat_template.jinja"), 0600), 0);
    assert_int_equal(tpi_chat_template_load(&t, dir, &err), TPI_EIO);
    assert_non_null(strstr(err.msg, "FIFO"));
    assert_int_equal(unlink(tu_in(dir, "chat_template.jinja")), 0);
    tu_rmdir(dir);
    free(dir);
}

/* `test_chat_template render T.jinja DIR`: prints the render of the case in
 * DIR (messages.json, opts.json with add_generation_prompt, bos_token and
 * eos_token, and optionally tools.json and extra.json, passed to the library
 * as their raw text), or "ERROR code: message"; tests/chat_diff.py compares
 * it with jinja2. */
static int render_case(const char *tpl_path, const char *dir)
{
    char *path = tu_path(dir, "messages.json");
    size_t n;
    char *src = tu_read_file(tpl_path, &n), *msgs = tu_read_file(path, NULL);
    free(path);
    path = tu_path(dir, "opts.json");
    char *opts_s = tu_read_file(path, NULL);
    free(path);
    path = tu_path(dir, "tools.json");
    char *tools = tu_read_file(path, NULL);
    free(path);
    path = tu_path(dir, "extra.json");
    char *extra = tu_read_file(path, NULL);
    free(path);
    cJSON *c = opts_s ? cJSON_Parse(opts_s) : NULL;
    if (!src || !msgs || !c) {
        fprintf(stderr, "cannot read %s or %s/{messages,opts}.json\n", tpl_path, dir);
        return 2;
    }
    tpi_chat_render_opts o = {.add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt")),
                              .bos_token = cJSON_GetStringValue(cJSON_GetObjectItem(c, "bos_token")),
                              .eos_token = cJSON_GetStringValue(cJSON_GetObjectItem(c, "eos_token")),
                              .tools_json = tools, .extra_json = extra, .now = fixed_now()};
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
    free(msgs), free(tools), free(extra), free(src), free(opts_s);
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
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constructs), cmocka_unit_test(test_whitespace), cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_render_errors), cmocka_unit_test(test_bad_inputs), cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
