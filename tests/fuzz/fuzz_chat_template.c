/* Fuzzes the chat-template subset: the input up to its first NUL is a
 * template, parsed and rendered against a fixed conversation with tools and
 * extra variables; what follows a NUL, if any, replaces the conversation's
 * messages. An empty template part renders those messages with a fixed
 * template written like the real ones (system extraction, a namespace, a
 * macro, tool calls through tojson, loop variables). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "tpinfer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_template[] =
    "{%- macro render_args(args) -%}{%- for k, v in args | items -%}{{ k }}={{ v | tojson }}"
    "{%- if not loop.last %}, {% endif -%}{%- endfor -%}{%- endmacro -%}\n"
    "{{- bos_token -}}\n"
    "{%- if messages[0]['role'] == 'system' -%}{%- set system = messages[0]['content'] | trim -%}"
    "{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set loop_messages = messages -%}{%- endif -%}\n"
    "{%- set ns = namespace(turns=0, last_user=-1) -%}\n"
    "{%- for m in loop_messages[::-1] if m.role == 'user' and ns.last_user < 0 -%}"
    "{%- set ns.last_user = loop_messages | length - loop.index -%}{%- endfor -%}\n"
    "{%- if system is defined %}<|system|>\n{{ system }}\n{% endif -%}\n"
    "{%- if tools %}<|tools|>{% for t in tools %}{{ t | tojson(indent=2) }}{% endfor %}{% endif -%}\n"
    "{%- for m in loop_messages -%}\n"
    "  {%- set content = m.content if m.content is string else (m.content | tojson if m.content is mapping else '') -%}\n"
    "  {%- if m.role == 'assistant' and m.tool_calls is defined -%}\n"
    "    {%- for tc in m.tool_calls -%}<call {{ tc.function.name | default('?') }}({{ render_args(tc.function.arguments) "
    "if tc.function.arguments is mapping else tc.function.arguments }})>{%- endfor -%}\n"
    "  {%- elif '</think>' in content -%}{{ content.split('</think>')[-1].lstrip() }}\n"
    "  {%- else -%}<|{{ m.role | upper }}|>{{ content }}{{ eos_token if m.role == 'assistant' }}\n"
    "  {%- endif -%}\n"
    "  {%- set ns.turns = ns.turns + 1 -%}{%- if loop.index0 == ns.last_user %}<last>{% endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt %}<|ASSISTANT|>{% if enable_thinking is false %}<think></think>{% endif %}{% endif %}";

static const char fixed_messages[] =
    "[{\"role\":\"system\",\"content\":\" Be brief. \"},{\"role\":\"user\",\"content\":\"Hi \\u00e9\"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"type\":\"function\",\"function\":"
    "{\"name\":\"f\",\"arguments\":{\"a\":1,\"b\":1.5,\"c\":[true,null]}}}]},"
    "{\"role\":\"tool\",\"content\":{\"r\":2}},{\"role\":\"user\",\"content\":\"Bye\"}]";

static const char tools[] = "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
                            "\"properties\":{\"a\":{\"type\":\"integer\"}}}}}]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *msgs;
    size_t msgs_n, tpl_n = fz_split(data, size, &msgs, &msgs_n);
    const char *src = tpl_n ? (const char *)data : fixed_template;
    size_t src_n = tpl_n ? tpl_n : sizeof fixed_template - 1;
    tpi_chat_template *t = NULL;
    tpi_error err = {0};
    if (tpi_chat_template_parse(&t, src, src_n, "fuzz.jinja", &err)) {
        if (!tpl_n || !err.msg[0]) /* the fixed template always parses; every failure says why */
            abort();
        return 0;
    }
    tpi_chat_render_opts o = {.add_generation_prompt = 1, .bos_token = "<s>", .eos_token = "</s>",
                              .tools_json = tools, .extra_json = "{\"enable_thinking\": false}", .now = 1796126400};
    char *text = NULL;
    size_t text_n = 0;
    int rc = msgs ? tpi_chat_template_render(t, (const char *)msgs, msgs_n, &o, &text, &text_n, &err)
                  : tpi_chat_template_render(t, fixed_messages, sizeof fixed_messages - 1, &o, &text, &text_n, &err);
    if (rc ? (text != NULL || !err.msg[0]) : (text == NULL || strlen(text) > text_n))
        abort();
    free(text);
    tpi_chat_template_free(t);
    return 0;
}
