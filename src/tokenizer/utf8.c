#include "tokenizer/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Allowed range of the second byte after lead byte c (Table 3-7). */
static int second_range(uint8_t c, uint8_t *lo, uint8_t *hi, size_t *n)
{
    *lo = 0x80, *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        *n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        *n = 3;
        if (c == 0xE0)
            *lo = 0xA0;
        else if (c == 0xED)
            *hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        *n = 4;
        if (c == 0xF0)
            *lo = 0x90;
        else if (c == 0xF4)
            *hi = 0x8F;
    } else
        return -1;
    return 0;
}

/* How many leading bytes at s belong to a possibly truncated well-formed
 * sequence; *full is its complete length. */
static size_t prefix_len(const uint8_t *s, size_t len, size_t *full)
{
    uint8_t lo, hi;
    if (len == 0)
        return 0;
    if (s[0] < 0x80) {
        *full = 1;
        return 1;
    }
    if (second_range(s[0], &lo, &hi, full))
        return 0;
    size_t k = 1;
    if (k < len && s[k] >= lo && s[k] <= hi) {
        k++;
        while (k < *full && k < len && s[k] >= 0x80 && s[k] <= 0xBF)
            k++;
    }
    return k;
}

size_t tok_utf8_next(const char *s, size_t len, uint32_t *cp)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t full = 0, k = prefix_len(u, len, &full);
    if (k == 0 || k != full)
        return 0;
    uint32_t c;
    switch (full) {
    case 1: c = u[0]; break;
    case 2: c = (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F); break;
    case 3: c = (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 | (u[2] & 0x3F); break;
    default:
        c = (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3F) << 12 |
            (uint32_t)(u[2] & 0x3F) << 6 | (u[3] & 0x3F);
    }
    if (cp)
        *cp = c;
    return full;
}

size_t tok_utf8_bad_len(const char *s, size_t len)
{
    size_t full = 0, k = prefix_len((const uint8_t *)s, len, &full);
    return k ? k : 1;
}

size_t tok_utf8_put(uint32_t cp, char *out)
{
    uint8_t *o = (uint8_t *)out;
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

int tok_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if ((uint8_t)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = tok_utf8_next(s + i, len - i, NULL);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

char *tok_utf8_repair(const char *s, size_t len, size_t *out_len)
{
    /* Each bad byte grows to at most 3 bytes. */
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n = (uint8_t)s[i] < 0x80 ? 1 : tok_utf8_next(s + i, len - i, NULL);
        if (n) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += tok_utf8_bad_len(s + i, len - i);
        }
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

/* bytes_to_unicode() from openai/gpt-2 encoder.py: printable Latin-1 bytes
 * stand for themselves, the other 68 bytes for U+0100 + their rank. */
static int printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* The 68 others in order: 0x00-0x20 (ranks 0-32), 0x7F-0xA0 (33-66), 0xAD (67). */
size_t tok_bytelevel_char(uint8_t b, char *out)
{
    uint32_t cp = b;
    if (b <= 0x20)
        cp = 0x100 + b;
    else if (b >= 0x7F && b <= 0xA0)
        cp = 0x100 + 33 + (b - 0x7Fu);
    else if (b == 0xAD)
        cp = 0x100 + 67;
    return tok_utf8_put(cp, out);
}

int tok_bytelevel_byte(uint32_t cp)
{
    if (cp < 0x100)
        return printable(cp) ? (int)cp : -1;
    uint32_t rank = cp - 0x100;
    if (rank < 33)
        return (int)rank;
    if (rank < 67)
        return (int)(0x7F + rank - 33);
    return rank == 67 ? 0xAD : -1;
}

int tok_is_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}
