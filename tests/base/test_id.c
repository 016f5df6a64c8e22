/*  test_id.c: release, deployment and request ids (base/al_id): the one rule, the
    ids made from a release id, and the split of a deployment id back into its release.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/al_id.h"

static void
test_release_valid (void **state)
{
    (void) state;
    assert_true (al_id_release_valid ("rel-api-1.2.0-abc123"));
    assert_true (al_id_release_valid ("a"));
    assert_true (al_id_release_valid ("A_b.c-9"));
    char longest [AL_ID_RELEASE_MAX + 2];
    memset (longest, 'x', AL_ID_RELEASE_MAX);
    longest [AL_ID_RELEASE_MAX] = 0;
    assert_true (al_id_release_valid (longest));
    longest [AL_ID_RELEASE_MAX] = 'x';
    longest [AL_ID_RELEASE_MAX + 1] = 0;
    assert_false (al_id_release_valid (longest));      // 57 characters
    assert_false (al_id_release_valid (NULL));
    assert_false (al_id_release_valid (""));
    assert_false (al_id_release_valid ("."));
    assert_false (al_id_release_valid (".."));
    assert_false (al_id_release_valid (".hidden"));
    assert_false (al_id_release_valid ("a/b"));
    assert_false (al_id_release_valid ("a b"));
    assert_false (al_id_release_valid ("caf\xc3\xa9"));
}

static void
test_deployment_valid (void **state)
{
    (void) state;
    char id [AL_ID_MAX + 2];
    memset (id, 'd', AL_ID_MAX);
    id [AL_ID_MAX] = 0;
    assert_true (al_id_valid (id));
    assert_false (al_id_release_valid (id));
    id [AL_ID_MAX] = 'd';
    id [AL_ID_MAX + 1] = 0;
    assert_false (al_id_valid (id));
    assert_false (al_id_valid (".x-prod"));
    assert_false (al_id_valid ("x\n-prod"));
    assert_false (al_id_valid (""));
}

static void
test_make (void **state)
{
    (void) state;
    char a [AL_ID_SIZE], b [AL_ID_SIZE];
    al_id_release_make ("rel", "api", "1.2.0", a, sizeof a);
    al_id_release_make ("rel", "api", "1.2.0", b, sizeof b);
    assert_true (al_id_release_valid (a));
    assert_int_equal (strncmp (a, "rel-api-1.2.0-", 14), 0);
    assert_int_equal (strlen (a), 20);
    //  Six random hex digits: two ids of the same release differ (1 in 16.7 million).
    assert_string_not_equal (a, b);
    //  Anything outside the alphabet becomes '_', long names are cut to 16.
    al_id_release_make ("rb", "my service/x", "1.0+build 7 extra long text", a, sizeof a);
    assert_true (al_id_release_valid (a));
    assert_int_equal (strncmp (a, "rb-my_service_x-1.0_build_7_extr-", 33), 0);
    //  The longest names still make a valid id that takes either suffix.
    al_id_release_make ("abcdefgh", "ssssssssssssssssssss", "vvvvvvvvvvvvvvvvvvvv", a, sizeof a);
    assert_true (al_id_release_valid (a));
    char deployment [AL_ID_SIZE];
    assert_true (al_id_deployment (a, AL_ID_PART_PRODUCTION, deployment, sizeof deployment));
    assert_true (al_id_valid (deployment));
}

static void
test_deployment_and_split (void **state)
{
    (void) state;
    char id [AL_ID_SIZE], release [AL_ID_SIZE];
    assert_true (al_id_deployment ("rel-api-1", AL_ID_PART_STAGING, id, sizeof id));
    assert_string_equal (id, "rel-api-1-stg");
    assert_true (al_id_deployment ("rel-api-1", AL_ID_PART_PRODUCTION, id, sizeof id));
    assert_string_equal (id, "rel-api-1-prod");
    assert_false (al_id_deployment ("../x", AL_ID_PART_PRODUCTION, id, sizeof id));
    assert_string_equal (id, "");

    assert_int_equal (al_id_release_of ("rel-api-1-stg", release, sizeof release), AL_ID_PART_STAGING);
    assert_string_equal (release, "rel-api-1");
    assert_int_equal (al_id_release_of ("rel-api-1-prod", release, sizeof release), AL_ID_PART_PRODUCTION);
    assert_string_equal (release, "rel-api-1");
    assert_int_equal (al_id_release_of ("rel-api-1", release, sizeof release), AL_ID_PART_NONE);
    assert_string_equal (release, "");
    assert_int_equal (al_id_release_of ("-prod", release, sizeof release), AL_ID_PART_NONE);
    assert_int_equal (al_id_release_of (".x-prod", release, sizeof release), AL_ID_PART_NONE);
    assert_string_equal (release, "");
    assert_int_equal (al_id_release_of (NULL, release, sizeof release), AL_ID_PART_NONE);
    //  A release part longer than a release id may be is no release's deployment.
    char long_id [80];
    memset (long_id, 'r', 57);
    strcpy (long_id + 57, "-stg");
    assert_int_equal (al_id_release_of (long_id, release, sizeof release), AL_ID_PART_NONE);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_release_valid),
        cmocka_unit_test (test_deployment_valid),
        cmocka_unit_test (test_make),
        cmocka_unit_test (test_deployment_and_split),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
