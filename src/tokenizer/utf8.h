#ifndef TPI_TOKENIZER_UTF8_H
#define TPI_TOKENIZER_UTF8_H
/* UTF-8 decoding and repair, and GPT-2's byte <-> printable-character map. */
#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the well-formed UTF-8 sequence at s (Unicode Table 3-7:
 * no overlongs, no surrogates, <= U+10FFFF), its code point in *cp; 0 when
 * the bytes at s do not start a well-formed sequence. */
size_t tok_utf8_next(const char *s, size_t len, uint32_t *cp);
/* Writes cp as UTF-8 into out (4 bytes room); returns the length. */
size_t tok_utf8_put(uint32_t cp, char *out);
/* Number of bytes of the ill-formed sequence at s that one U+FFFD replaces:
 * the maximal subpart of a well-formed sequence, at least 1 (the W3C/Unicode
 * "substitution of maximal subparts", as Python's and Rust's lossy decoders). */
size_t tok_utf8_bad_len(const char *s, size_t len);
/* 1 when all len bytes are well-formed UTF-8. */
int tok_utf8_valid(const char *s, size_t len);
/* Copy of s with each ill-formed subpart replaced by U+FFFD; malloc'd,
 * NUL-terminated, NULL when out of memory. */
char *tok_utf8_repair(const char *s, size_t len, size_t *out_len);

/* Rust's char::is_whitespace: the Unicode White_Space property. */
int tok_is_space(uint32_t cp);

/* GPT-2 bytes_to_unicode(): the character byte b is written as (1 or 2 bytes
 * of UTF-8 in out, length returned). */
size_t tok_bytelevel_char(uint8_t b, char *out);
/* The byte a code point stands for, or -1 when cp is not one of the 256. */
int tok_bytelevel_byte(uint32_t cp);
#endif
