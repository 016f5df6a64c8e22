/*  test_yaml.c: al_yaml, the one YAML walk and its one alias rule.

    A small schema is walked: values, unknown, duplicate and missing keys, integers
    out of range and relative paths, each error at its file:line:col. Every alias is
    refused at its own position (of a scalar too) before any walk; an anchor alone is
    fine; a billion-laughs document fails fast.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/al_yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char directory [64];
    char path [128];
    char error [4096];
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *fixture = calloc (1, sizeof *fixture);
    snprintf (fixture->directory, sizeof fixture->directory, "/tmp/test_yaml-XXXXXX");
    if (!mkdtemp (fixture->directory))
        return -1;
    snprintf (fixture->path, sizeof fixture->path, "%s/thing.yaml", fixture->directory);
    *state = fixture;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fixture = *state;
    unlink (fixture->path);
    rmdir (fixture->directory);
    free (fixture);
    return 0;
}

//  Load text with the schema { name: string, count: 1..10, file: path, tags: [string] }
//  (name required). 0 when valid; the name and the path into out (MAY be NULL).
static int
s_load (s_fixture_t *fixture, const char *text, char *name_out, char *path_out)
{
    FILE *file = fopen (fixture->path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    fixture->error [0] = 0;
    al_yaml_t *yaml = al_yaml_new (fixture->path, fixture->error, sizeof fixture->error);
    assert_non_null (yaml);
    yaml_node_t *root = al_yaml_load (yaml, 65536, "empty file: name is required");
    static const char *const allowed [] = { "name", "count", "file", "tags", NULL };
    static const char *const required [] = { "name", NULL };
    if (root && al_yaml_check_map (yaml, root, NULL, allowed, required)) {
        //  A missing required key is reported by al_yaml_check_map; the walker skips it.
        yaml_node_t *name_node = al_yaml_get (yaml, root, "name");
        const char *name = name_node ? al_yaml_string (yaml, name_node, "name", false) : NULL;
        if (name && name_out)
            strcpy (name_out, name);
        yaml_node_t *count = al_yaml_get (yaml, root, "count");
        long long value;
        if (count)
            al_yaml_integer (yaml, count, "count", 1, 10, &value);
        yaml_node_t *path = al_yaml_get (yaml, root, "file");
        if (path) {
            char *absolute = al_yaml_path (yaml, path, "file");
            if (absolute && path_out)
                strcpy (path_out, absolute);
            free (absolute);
        }
        yaml_node_t *tags = al_yaml_get (yaml, root, "tags");
        if (tags && al_yaml_want_list (yaml, tags, "tags"))
            for (size_t index = 0; index < al_yaml_list_length (tags); index++) {
                char field [AL_YAML_FIELD_SIZE];
                al_yaml_field_index (field, "tags", index);
                al_yaml_string (yaml, al_yaml_list_at (yaml, tags, index), field, false);
            }
    }
    if (root)
        al_yaml_end (yaml, "thing.yaml");
    int rc = al_yaml_report (yaml, fixture->error, sizeof fixture->error);
    al_yaml_destroy (&yaml);
    assert_null (yaml);
    return rc;
}

static void
s_expect (s_fixture_t *fixture, const char *text, const char *expected)
{
    assert_int_equal (s_load (fixture, text, NULL, NULL), -1);
    char whole [512];
    snprintf (whole, sizeof whole, "%s%s", fixture->path, expected);
    if (!strstr (fixture->error, whole))
        fail_msg ("expected '%s' in:\n%s", whole, fixture->error);
}

static void
test_walk (void **state)
{
    s_fixture_t *fixture = *state;
    char name [64] = "", path [256] = "";
    assert_int_equal (s_load (fixture, "name: web\ncount: 3\nfile: data/x.db\ntags: [a, b]\n", name, path), 0);
    assert_string_equal (name, "web");
    char expected [256];
    char *real = realpath (fixture->directory, NULL);
    snprintf (expected, sizeof expected, "%s/data/x.db", real);
    free (real);
    assert_string_equal (path, expected);
    //  An anchor that nothing refers to is harmless.
    assert_int_equal (s_load (fixture, "name: &n web\n", name, NULL), 0);
}

static void
test_errors_name_the_place (void **state)
{
    s_fixture_t *fixture = *state;
    s_expect (fixture, "name: web\ncolour: red\n", ":2:1: unknown key 'colour'");
    s_expect (fixture, "name: web\nname: api\n", ":2:1: duplicate key 'name'");
    s_expect (fixture, "count: 3\n", ":1:1: missing key 'name'");
    s_expect (fixture, "name: web\ncount: 11\n", ":2:8: count: 11 is out of range 1..10");
    s_expect (fixture, "name: web\ntags: [a, [b]]\n", ":2:11: tags[1]:");
    s_expect (fixture, "", ": empty file: name is required");
    s_expect (fixture, "name: [\n", ":2:1: did not find expected node content");
    s_expect (fixture, "name: a\n---\nname: b\n", ":3:1: a second YAML document; thing.yaml holds one");
    //  Every problem is listed, one per line.
    assert_int_equal (s_load (fixture, "name: web\na: 1\nb: 2\n", NULL, NULL), -1);
    assert_non_null (strstr (fixture->error, ":2:1: unknown key 'a'\n"));
    assert_non_null (strstr (fixture->error, ":3:1: unknown key 'b'"));
}

//  A list may be long (identities.yaml: one item per agent key), up to AL_YAML_MAX_ITEMS.
static void
test_list_limit (void **state)
{
    s_fixture_t *fixture = *state;
    size_t size = 16 + 3 * (AL_YAML_MAX_ITEMS + 1) + 8;
    char *text = malloc (size);
    assert_non_null (text);
    for (int items = AL_YAML_MAX_ITEMS; items <= AL_YAML_MAX_ITEMS + 1; items++) {
        size_t used = (size_t) snprintf (text, size, "name: web\ntags: [");
        for (int index = 0; index < items; index++)
            used += (size_t) snprintf (text + used, size - used, index? ",a ": "a ");
        snprintf (text + used, size - used, "]\n");
        if (items == AL_YAML_MAX_ITEMS)
            assert_int_equal (s_load (fixture, text, NULL, NULL), 0);
        else {
            char expected [64];
            snprintf (expected, sizeof expected, ":2:7: tags: more than %d items", AL_YAML_MAX_ITEMS);
            s_expect (fixture, text, expected);
        }
    }
    free (text);
}

static void
test_every_alias_refused (void **state)
{
    s_fixture_t *fixture = *state;
    //  Of a scalar, at the alias itself.
    s_expect (fixture, "name: &n web\ntags: [*n]\n",
              ":2:8: an alias (*n): aliases are not allowed; write the value out");
    //  Of a list; both aliases are reported.
    assert_int_equal (s_load (fixture, "tags: &t [a]\nname: x\nfile: *t\ncount: *t\n", NULL, NULL), -1);
    assert_non_null (strstr (fixture->error, ":3:7: an alias (*t)"));
    assert_non_null (strstr (fixture->error, ":4:8: an alias (*t)"));
    //  Nothing is walked: no schema error on top.
    assert_null (strstr (fixture->error, "unknown key"));
    //  The billion laughs fails fast, at its first alias.
    char text [2048] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char level = 'b'; level <= 'j'; level++) {
        char line [128];
        snprintf (line, sizeof line, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n",
                  level, level, level - 1, level - 1, level - 1, level - 1, level - 1,
                  level - 1, level - 1, level - 1, level - 1, level - 1);
        strcat (text, line);
    }
    s_expect (fixture, text, ":2:8: an alias (*a)");
}

static void
test_find_alias (void **state)
{
    (void) state;
    size_t line = 0, column = 0;
    char message [160] = "";
    const char *with = "a: &x 1\nb: [2, *x]\n";
    assert_true (al_yaml_find_alias ((const unsigned char *) with, strlen (with), &line, &column,
                                     message, sizeof message));
    assert_int_equal (line, 2);
    assert_int_equal (column, 8);
    assert_string_equal (message, "an alias (*x): aliases are not allowed; write the value out");
    const char *without = "a: &x 1\nb: [2, 3]\n";
    assert_false (al_yaml_find_alias ((const unsigned char *) without, strlen (without), &line, &column,
                                      message, sizeof message));
    //  Text that does not parse: no alias found (the loader's parse reports it).
    const char *broken = "a: [\n";
    assert_false (al_yaml_find_alias ((const unsigned char *) broken, strlen (broken), NULL, NULL, NULL, 0));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_walk, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_errors_name_the_place, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_list_limit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_every_alias_refused, s_setup, s_teardown),
        cmocka_unit_test (test_find_alias),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
