/*
 * payhub._speedups: compiled fast paths, each with a pure-Python twin that
 * gives the same answers (tests/test_speedups.py holds the two to equality).
 *
 * decode_form_utf8(body: bytes) -> tuple[dict[str, str], bytes] | None
 *
 *   Decodes an application/x-www-form-urlencoded UTF-8 body the way
 *   payhub.channels.alipay._wire._decode_form_slow does (each '&'-segment split
 *   at its first '=', '+' as space, %XX escapes, UTF-8), and builds the bytes
 *   Alipay signs: payhub.signing.canonical_query(fields, exclude=("sign",
 *   "sign_type")) encoded as UTF-8 -- non-empty values, keys sorted by code
 *   point (UTF-8 byte order is code point order), "k=v" joined by '&'.
 *
 *   It answers None, and leaves the body to the Python decoders (which raise
 *   the typed errors), for anything off the common shape: an empty body or
 *   segment, a segment without '=', a malformed escape, invalid UTF-8, a
 *   repeated field, a charset field naming anything but UTF-8 ("utf-8" or
 *   "utf8", any case). It never raises for the content of the body.
 *
 *   Short ASCII keys come from a small per-module cache of strings: a shop's
 *   notifications repeat the same two dozen names, which then cost neither an
 *   allocation nor a hash (a str keeps its hash once computed).
 *
 * Untrusted input: every index below is bounded by the body's length, and
 * the scratch buffer holds at most that many bytes (decoding only shrinks).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* A dict sized for its fields up front where CPython offers it (private API,
 * present through 3.13); a plain one elsewhere. */
#if PY_VERSION_HEX < 0x030E0000 && !defined(Py_LIMITED_API)
#define NEW_DICT(n) _PyDict_NewPresized(n)
#else
#define NEW_DICT(n) PyDict_New()
#endif

#define STACK_FIELDS 64
#define STACK_BYTES 4096
#define KEY_CACHE_SIZE 256 /* a power of two */
#define KEY_CACHE_MAX_LEN 32

typedef struct {
    PyObject *keys[KEY_CACHE_SIZE]; /* str, or NULL */
} State;

typedef struct {
    const char *key;  /* decoded bytes, inside the scratch buffer */
    Py_ssize_t klen;
    const char *value;
    Py_ssize_t vlen;
    int key_ascii, value_ascii;
    uint64_t prefix; /* the key's first 8 bytes, big-endian, NUL-padded */
} Field;

/* Up to 8 bytes as a big-endian integer, NUL-padded: integers compare as the
 * padded bytes do, so unequal prefixes order their keys. */
static uint64_t
be64(const char *s, Py_ssize_t n)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) {
        v = (v << 8) | (i < n ? (unsigned char)s[i] : 0u);
    }
    return v;
}

static int
hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode src[0:n] into dst (room for n bytes); the count written, or -1 for a
 * '%' not followed by two hex digits. *ascii stays 1 while every decoded byte
 * is below 0x80. */
static Py_ssize_t
unquote_plus(const unsigned char *src, Py_ssize_t n, char *dst, int *ascii)
{
    Py_ssize_t i = 0, o = 0;
    unsigned char seen = 0;
    while (i < n) {
        unsigned char c = src[i];
        if (c == '%') {
            int hi, lo;
            if (n - i < 3) return -1;
            hi = hex_digit(src[i + 1]);
            lo = hex_digit(src[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 3;
        }
        else {
            if (c == '+') c = ' ';
            i++;
        }
        seen |= c;
        dst[o++] = (char)c;
    }
    *ascii = seen < 0x80;
    return o;
}

static int
key_less(const Field *x, const Field *y)
{
    const unsigned char *a, *b;
    Py_ssize_t i, n;
    if (x->prefix != y->prefix) return x->prefix < y->prefix;
    a = (const unsigned char *)x->key;
    b = (const unsigned char *)y->key;
    n = x->klen < y->klen ? x->klen : y->klen;
    for (i = 0; i < n; i++) {
        if (a[i] != b[i]) return a[i] < b[i];
    }
    return x->klen < y->klen;
}

static int
by_key(const void *a, const void *b)
{
    const Field *x = (const Field *)a, *y = (const Field *)b;
    return key_less(x, y) ? -1 : key_less(y, x);
}

/* Sort by key, bytewise: insertion sort for the few fields of a notification,
 * qsort past that. */
static void
sort_fields(Field *fields, Py_ssize_t n)
{
    Py_ssize_t i, j;
    if (n > 48) {
        qsort(fields, (size_t)n, sizeof(Field), by_key);
        return;
    }
    for (i = 1; i < n; i++) {
        Field item = fields[i];
        for (j = i; j > 0 && key_less(&item, &fields[j - 1]); j--) {
            fields[j] = fields[j - 1];
        }
        fields[j] = item;
    }
}

static int
is_unsigned_key(const Field *f)
{
    return (f->klen == 4 && memcmp(f->key, "sign", 4) == 0)
        || (f->klen == 9 && memcmp(f->key, "sign_type", 9) == 0);
}

/* A str from decoded bytes (ASCII ones copied straight in); NULL with no
 * error set for invalid UTF-8 (the caller answers None), NULL with an error
 * set for anything else. */
static PyObject *
text(const char *s, Py_ssize_t n, int ascii)
{
    PyObject *result;
    if (ascii) {
        result = PyUnicode_New(n, 127);
        if (result != NULL && n > 0) memcpy(PyUnicode_DATA(result), s, (size_t)n);
        return result;
    }
    result = PyUnicode_DecodeUTF8(s, n, NULL);
    if (result == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
    }
    return result;
}

/* A key as str: from the cache when it is short and ASCII, else as text(). */
static PyObject *
key_text(State *state, const Field *f)
{
    PyObject **slot, *key;
    uint64_t h;
    if (!f->key_ascii || f->klen > KEY_CACHE_MAX_LEN) {
        return text(f->key, f->klen, f->key_ascii);
    }
    /* the slot: a mix of the length, the first and the last 8 bytes (a
     * collision costs only a miss: the key is compared in full below) */
    h = f->prefix ^ ((uint64_t)f->klen * 0x9E3779B97F4A7C15u);
    if (f->klen > 8) h ^= be64(f->key + f->klen - 8, 8) * 0xBF58476D1CE4E5B9u;
    h ^= h >> 31;
    h *= 0x94D049BB133111EBu;
    h ^= h >> 29;
    slot = &state->keys[h & (KEY_CACHE_SIZE - 1)];
    key = *slot;
    if (key != NULL && PyUnicode_GET_LENGTH(key) == f->klen
        && memcmp(PyUnicode_DATA(key), f->key, (size_t)f->klen) == 0) {
        return Py_NewRef(key);
    }
    /* Not interned: the keys are the sender's, decoded before any signature
     * is checked, and since 3.12 interned strings are immortal -- random keys
     * would grow memory for good. The cache holds at most KEY_CACHE_SIZE. */
    key = text(f->key, f->klen, 1);
    if (key == NULL) return NULL;
    Py_XSETREF(*slot, Py_NewRef(key));
    return key;
}

/* 1 unless the field is "charset" with a value other than utf-8 / utf8. */
static int
declares_utf8(const Field *f)
{
    static const char spelled[] = "utf-8";
    Py_ssize_t i, j;
    if (f->klen != 7 || memcmp(f->key, "charset", 7) != 0) return 1;
    if (f->vlen != 4 && f->vlen != 5) return 0;
    for (i = 0, j = 0; i < f->vlen; i++, j++) {
        char c = f->value[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (f->vlen == 4 && j == 3) j++; /* "utf8": skip the hyphen */
        if (c != spelled[j]) return 0;
    }
    return 1;
}

static PyObject *
decode_form_utf8(PyObject *module, PyObject *arg)
{
    const unsigned char *body;
    Py_ssize_t size, count = 1, i, start, used = 0, total = 0;
    Field stack_fields[STACK_FIELDS], *fields = NULL;
    char stack_bytes[STACK_BYTES], *scratch = NULL, *out;
    PyObject *dict = NULL, *message = NULL, *result = NULL;
    State *state = (State *)PyModule_GetState(module);

    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "decode_form_utf8() takes bytes");
        return NULL;
    }
    body = (const unsigned char *)PyBytes_AS_STRING(arg);
    size = PyBytes_GET_SIZE(arg);
    if (size == 0) Py_RETURN_NONE;
    for (i = 0; i < size; i++) {
        count += body[i] == '&';
    }
    /* a notification fits on the stack; a bigger body goes to the heap */
    fields = count <= STACK_FIELDS ? stack_fields : PyMem_New(Field, (size_t)count);
    scratch = size <= STACK_BYTES ? stack_bytes : (char *)PyMem_Malloc((size_t)size);
    if (fields == NULL || scratch == NULL) {
        PyErr_NoMemory();
        goto done;
    }

    /* split and percent-decode every segment into the scratch buffer */
    out = scratch;
    start = 0;
    while (start <= size) {
        const unsigned char *segment = body + start, *amp, *eq;
        Py_ssize_t length, klen, vlen;
        Field *f;
        amp = (const unsigned char *)memchr(segment, '&', (size_t)(size - start));
        length = amp != NULL ? amp - segment : size - start;
        start += length + 1;
        if (length == 0) goto none;
        eq = (const unsigned char *)memchr(segment, '=', (size_t)length);
        if (eq == NULL) goto none;
        f = &fields[used++];
        klen = unquote_plus(segment, eq - segment, out, &f->key_ascii);
        if (klen < 0) goto none;
        f->key = out;
        f->klen = klen;
        f->prefix = be64(out, klen);
        out += klen;
        vlen = unquote_plus(eq + 1, length - (eq + 1 - segment), out, &f->value_ascii);
        if (vlen < 0) goto none;
        f->value = out;
        f->vlen = vlen;
        out += vlen;
        if (!declares_utf8(f)) goto none;
    }

    /* the fields, in body order */
    dict = NEW_DICT(used);
    if (dict == NULL) goto done;
    for (i = 0; i < used; i++) {
        PyObject *key, *value;
        int failed;
        key = key_text(state, &fields[i]);
        if (key == NULL) goto invalid;
        value = text(fields[i].value, fields[i].vlen, fields[i].value_ascii);
        if (value == NULL) {
            Py_DECREF(key);
            goto invalid;
        }
        failed = PyDict_SetItem(dict, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (failed) goto done;
    }
    if (PyDict_GET_SIZE(dict) != used) goto none; /* a repeated field */

    /* the signed bytes: sorted by key, less sign/sign_type and empty values */
    sort_fields(fields, used);
    for (i = 0; i < used; i++) {
        if (fields[i].vlen == 0 || is_unsigned_key(&fields[i])) continue;
        total += (total ? 1 : 0) + fields[i].klen + 1 + fields[i].vlen;
    }
    message = PyBytes_FromStringAndSize(NULL, total);
    if (message == NULL) goto done;
    out = PyBytes_AS_STRING(message);
    for (i = 0; i < used; i++) {
        const Field *f = &fields[i];
        if (f->vlen == 0 || is_unsigned_key(f)) continue;
        if (out != PyBytes_AS_STRING(message)) *out++ = '&';
        memcpy(out, f->key, (size_t)f->klen);
        out += f->klen;
        *out++ = '=';
        memcpy(out, f->value, (size_t)f->vlen);
        out += f->vlen;
    }
    result = PyTuple_Pack(2, dict, message);
    goto done;

invalid:
    if (PyErr_Occurred()) goto done; /* not a decoding problem: raise it */
none:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(dict);
    Py_XDECREF(message);
    if (scratch != stack_bytes) PyMem_Free(scratch);
    if (fields != stack_fields) PyMem_Free(fields);
    return result;
}

static PyMethodDef methods[] = {
    {"decode_form_utf8", decode_form_utf8, METH_O,
     "decode_form_utf8(body, /)\n--\n\n"
     "A UTF-8 form body's fields and Alipay's signed bytes, or None."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static void
module_free(void *module)
{
    State *state = (State *)PyModule_GetState((PyObject *)module);
    Py_ssize_t i;
    if (state == NULL) return;
    for (i = 0; i < KEY_CACHE_SIZE; i++) {
        Py_CLEAR(state->keys[i]);
    }
}

/* The key cache is plain module state guarded by the GIL: the module does not
 * declare itself safe without one (Py_mod_gil), so a free-threaded build
 * keeps the GIL on while it is imported. */
static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "payhub._speedups",
    .m_doc = "Compiled fast paths of payhub; each has a pure-Python twin.",
    .m_size = sizeof(State),
    .m_free = module_free,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
