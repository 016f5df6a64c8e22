/*  test_init.c: `airlock init` (al_init_state_dir) in a temporary directory.

    Checks the files and their modes, that identities.yaml maps every certificate's key
    to its role (read back with the policy loader), that airlock.yaml loads with
    al_config, and that a re-run keeps every key byte for byte.
*/
#include "agent_test_env.h"
#include "agents/al_agent.h"
#include "agents/al_init.h"
#include "agents/al_subscriber.h"
#include "broker/al_broker.h"
#include "base/al_config.h"
#include "policies/al_policy.h"

#include <czmq.h>
#include <dirent.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <cmocka.h>

typedef struct {
    char dir [128];         // the temporary directory
    char state [160];       // the state directory inside it (made by init)
    zlistx_t *notes;        // "action path"
} fixture_t;

static void
s_note (void *arg, const char *action, const char *path)
{
    fixture_t *fixture = arg;
    zlistx_add_end (fixture->notes, zsys_sprintf ("%s %s", action, path));
}

static bool
s_noted (fixture_t *fixture, const char *action, const char *path)
{
    char *wanted = zsys_sprintf ("%s %s", action, path);
    bool found = false;
    for (char *note = zlistx_first (fixture->notes); note; note = zlistx_next (fixture->notes))
        if (streq (note, wanted))
            found = true;
    zstr_free (&wanted);
    return found;
}

static void
s_note_destroy (void **item_p)
{
    zstr_free ((char **) item_p);
}

static int
setup (void **state)
{
    fixture_t *fixture = calloc (1, sizeof *fixture);
    assert_non_null (fixture);
    snprintf (fixture->dir, sizeof fixture->dir, "/tmp/al-init-XXXXXX");
    assert_non_null (mkdtemp (fixture->dir));
    // A state directory that does not exist yet, one level down.
    snprintf (fixture->state, sizeof fixture->state, "%s/nested/state", fixture->dir);
    fixture->notes = zlistx_new ();
    zlistx_set_destructor (fixture->notes, s_note_destroy);
    unsetenv ("AIRLOCK_POLICY_DIR");
    *state = fixture;
    return 0;
}

static int
teardown (void **state)
{
    fixture_t *fixture = *state;
    agent_test_remove_tree (fixture->dir);
    zlistx_destroy (&fixture->notes);
    free (fixture);
    return 0;
}

static int
s_init (fixture_t *fixture, bool force_config, char *error, size_t error_size)
{
    zlistx_purge (fixture->notes);
    al_init_options_t options = { NULL, force_config };
    return al_init_state_dir (fixture->state, &options, s_note, fixture, error, error_size);
}

static mode_t
s_mode (const char *path)
{
    struct stat st;
    if (stat (path, &st) != 0)
        fail_msg ("%s: does not exist", path);
    return st.st_mode & 07777;
}

//  A chunk's bytes as a string (not strndup: the chunk holds no NUL, and ASan's
//  strict_string_checks makes strndup read on to one).
static char *
s_chunk_text (zchunk_t *chunk)
{
    char *text = (char *) malloc (zchunk_size (chunk) + 1);
    assert_non_null (text);
    memcpy (text, zchunk_data (chunk), zchunk_size (chunk));
    text [zchunk_size (chunk)] = 0;
    return text;
}

static zchunk_t *
s_slurp (const char *path)
{
    zfile_t *file = zfile_new (NULL, path);
    assert_non_null (file);
    assert_int_equal (zfile_input (file), 0);
    zchunk_t *chunk = zfile_read (file, (size_t) zfile_cursize (file), 0);
    zfile_destroy (&file);
    assert_non_null (chunk);
    return chunk;
}

//  ---------------------------------------------------------------------------------

static void
test_creates_a_complete_state_dir (void **state)
{
    fixture_t *fixture = *state;
    char error [512] = "";
    if (s_init (fixture, false, error, sizeof error) != 0)
        fail_msg ("init: %s", error);
    char path [512];
    snprintf (path, sizeof path, "%s/keys", fixture->state);
    assert_int_equal (s_mode (path), 0700);
    assert_true (s_noted (fixture, "created", path));

    al_config_t *config = NULL;
    snprintf (path, sizeof path, "%s/airlock.yaml", fixture->state);
    config = al_config_load (path, error, sizeof error);
    if (!config)
        fail_msg ("airlock.yaml: %s", error);
    assert_string_equal (al_config_state_dir (config), fixture->state);
    snprintf (path, sizeof path, "%s/policy", fixture->state);
    assert_string_equal (al_config_policy_dir (config), path);
    snprintf (path, sizeof path, "ipc://%s/broker.ipc", fixture->state);
    assert_string_equal (al_config_router_endpoint (config), path);

    // The broker certificate: public and secret (0600).
    zcert_t *broker = zcert_load (al_config_broker_cert (config));
    assert_non_null (broker);
    snprintf (path, sizeof path, "%s_secret", al_config_broker_cert (config));
    assert_int_equal (s_mode (path), 0600);
    zcert_destroy (&broker);

    // The checkpoint key: 64 bytes hex, 0600; its public half beside it.
    assert_int_equal (s_mode (al_config_checkpoint_key (config)), 0600);
    zchunk_t *secret_hex = s_slurp (al_config_checkpoint_key (config));
    assert_int_equal (zchunk_size (secret_hex), 129);
    uint8_t secret [64];
    size_t length = 0;
    assert_int_equal (sodium_hex2bin (secret, sizeof secret, (char *) zchunk_data (secret_hex),
                                      zchunk_size (secret_hex), "\n", &length, NULL), 0);
    assert_int_equal (length, 64);
    uint8_t public_key [32];
    char public_hex [65];
    crypto_sign_ed25519_sk_to_pk (public_key, secret);
    sodium_bin2hex (public_hex, sizeof public_hex, public_key, sizeof public_key);
    snprintf (path, sizeof path, "%s/checkpoint.pub", al_config_agents_keys_dir (config));
    zchunk_t *public_text = s_slurp (path);
    assert_int_equal (zchunk_size (public_text), 65);
    assert_memory_equal (zchunk_data (public_text), public_hex, 64);
    zchunk_destroy (&secret_hex);
    zchunk_destroy (&public_text);

    // identities.yaml maps each role certificate's key to identity = role, role = role.
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (al_config_policy_dir (config), &errors);
    if (!policy) {
        for (size_t index = 0; index < al_policy_errors_count (errors); index++)
            print_error ("%s\n", al_policy_errors_at (errors, index));
        al_policy_errors_destroy (&errors);
        fail_msg ("the initialised policy directory does not load");
    }
    for (size_t index = 0; index < al_init_role_count (); index++) {
        const char *role = al_init_role_at (index);
        char *cert_path = al_config_agent_cert (config, role);
        assert_non_null (cert_path);
        zcert_t *cert = zcert_load (cert_path);
        assert_non_null (cert);
        snprintf (path, sizeof path, "%s_secret", cert_path);
        assert_int_equal (s_mode (path), 0600);
        assert_true (s_noted (fixture, "created", path));
        const char *identity = NULL;
        const char *mapped_role = NULL;
        assert_true (al_policy_identity_for_key (policy, zcert_public_txt (cert), &identity, &mapped_role));
        assert_string_equal (identity, role);
        assert_string_equal (mapped_role, role);
        assert_true (al_policy_role_exists (policy, role));
        zcert_destroy (&cert);
        free (cert_path);
    }
    // The broker's own key is not an identity.
    broker = zcert_load (al_config_broker_cert (config));
    assert_false (al_policy_identity_for_key (policy, zcert_public_txt (broker), NULL, NULL));
    zcert_destroy (&broker);
    al_policy_destroy (&policy);

    snprintf (path, sizeof path, "%s/checkpoints", fixture->state);
    assert_int_equal (s_mode (path), 0700);

    // An agent's options come from this configuration: endpoint, broker key, own cert.
    al_agent_options_t options;
    al_agent_options_defaults (&options);
    assert_int_equal (al_agent_options_from_config (&options, config, "deploy-manager",
                                                    error, sizeof error), 0);
    assert_string_equal (options.endpoint, al_config_router_endpoint (config));
    broker = zcert_load (al_config_broker_cert (config));
    assert_string_equal (options.broker_key, zcert_public_txt (broker));
    zcert_destroy (&broker);
    snprintf (path, sizeof path, "%s/keys/deploy-manager.cert", fixture->state);
    assert_string_equal (options.cert_path, path);
    assert_string_equal (options.name, "deploy-manager");
    assert_int_equal (options.heartbeat_ms, al_config_heartbeat_ms (config));
    assert_int_equal (al_agent_options_from_config (&options, config, "../etc", error, sizeof error), -1);
    al_config_destroy (&config);
}

//  The files whose bytes must survive a re-run.
static const char *s_key_files [] = {
    "keys/broker.cert", "keys/broker.cert_secret", "keys/orchestrator.cert",
    "keys/orchestrator.cert_secret", "keys/qa.cert", "keys/qa.cert_secret",
    "keys/deploy-manager.cert", "keys/deploy-manager.cert_secret", "keys/monitor.cert",
    "keys/monitor.cert_secret", "keys/notifier.cert", "keys/notifier.cert_secret",
    "keys/auditor.cert", "keys/auditor.cert_secret", "keys/checkpoint.key",
    "keys/checkpoint.pub", "policy/identities.yaml", "airlock.yaml"
};
#define S_KEY_FILES (sizeof s_key_files / sizeof s_key_files [0])

static void
test_rerun_keeps_every_key (void **state)
{
    fixture_t *fixture = *state;
    char error [512] = "";
    if (s_init (fixture, false, error, sizeof error) != 0)
        fail_msg ("init: %s", error);
    zchunk_t *before [S_KEY_FILES];
    char path [512];
    for (size_t index = 0; index < S_KEY_FILES; index++) {
        snprintf (path, sizeof path, "%s/%s", fixture->state, s_key_files [index]);
        before [index] = s_slurp (path);
    }
    if (s_init (fixture, false, error, sizeof error) != 0)
        fail_msg ("second init: %s", error);
    for (size_t index = 0; index < S_KEY_FILES; index++) {
        snprintf (path, sizeof path, "%s/%s", fixture->state, s_key_files [index]);
        zchunk_t *after = s_slurp (path);
        assert_true (zchunk_size (after) == zchunk_size (before [index])
                  && memcmp (zchunk_data (after), zchunk_data (before [index]), zchunk_size (after)) == 0);
        assert_true (s_noted (fixture, "kept", path));
        zchunk_destroy (&after);
    }
    for (size_t index = 0; index < S_KEY_FILES; index++)
        zchunk_destroy (&before [index]);
    // Nothing was created the second time.
    for (char *note = zlistx_first (fixture->notes); note; note = zlistx_next (fixture->notes))
        assert_int_equal (strncmp (note, "created", 7) != 0, 1);
}

static void
test_config_is_kept_unless_forced (void **state)
{
    fixture_t *fixture = *state;
    char error [512] = "";
    assert_int_equal (s_init (fixture, false, error, sizeof error), 0);
    char path [512];
    snprintf (path, sizeof path, "%s/airlock.yaml", fixture->state);
    al_config_t *config = al_config_load (path, error, sizeof error);
    assert_non_null (config);
    // An operator's edit: heartbeat 250 ms.
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "state_dir: %s\nheartbeat_ms: 250\n", fixture->state);
    fclose (file);
    al_config_destroy (&config);

    assert_int_equal (s_init (fixture, false, error, sizeof error), 0);
    assert_true (s_noted (fixture, "kept", path));
    config = al_config_load (path, error, sizeof error);
    assert_non_null (config);
    assert_int_equal (al_config_heartbeat_ms (config), 250);
    al_config_destroy (&config);

    assert_int_equal (s_init (fixture, true, error, sizeof error), 0);
    assert_true (s_noted (fixture, "rewritten", path));
    config = al_config_load (path, error, sizeof error);
    assert_non_null (config);
    assert_int_equal (al_config_heartbeat_ms (config), AL_CONFIG_DEFAULT_HEARTBEAT_MS);
    al_config_destroy (&config);
}

static bool
s_same_bytes (zchunk_t *a, zchunk_t *b)
{
    return a && b && zchunk_size (a) == zchunk_size (b) && memcmp (zchunk_data (a), zchunk_data (b), zchunk_size (a)) == 0;
}

static void
s_write_text (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

//  Issue 15: re-running init never rewrites identities.yaml: what an operator added
//  (identities, people, comments) stays byte for byte; an entry removed by hand is not
//  put back (only reported); a certificate init has to make again is appended.
static void
test_identities_are_never_rewritten_and_policy_kept (void **state)
{
    fixture_t *fixture = *state;
    char error [1024] = "";
    assert_int_equal (s_init (fixture, false, error, sizeof error), 0);
    char identities [512], roles [512], config_path [512], path [600];
    snprintf (identities, sizeof identities, "%s/policy/identities.yaml", fixture->state);
    snprintf (roles, sizeof roles, "%s/policy/roles.yaml", fixture->state);
    snprintf (config_path, sizeof config_path, "%s/airlock.yaml", fixture->state);
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    assert_non_null (config);
    assert_int_equal (al_init_identity_add (config, "backend-1", "backend-specialist", "alice", NULL, NULL,
                                            error, sizeof error), 0);
    FILE *file = fopen (identities, "a");
    assert_non_null (file);
    fprintf (file, "# operator's note about backend-1\n");
    fclose (file);
    file = fopen (roles, "a");
    assert_non_null (file);
    fprintf (file, "# operator's note\n");
    fclose (file);
    zchunk_t *edited = s_slurp (identities);
    zchunk_t *edited_roles = s_slurp (roles);
    assert_non_null (memmem (zchunk_data (edited), zchunk_size (edited), "identity: backend-1", 19));

    assert_int_equal (s_init (fixture, false, error, sizeof error), 0);
    assert_true (s_noted (fixture, "kept", identities));
    assert_true (s_noted (fixture, "kept", roles));
    zchunk_t *after = s_slurp (identities);
    assert_true (s_same_bytes (after, edited));
    zchunk_t *roles_after = s_slurp (roles);
    assert_true (s_same_bytes (roles_after, edited_roles));
    zchunk_destroy (&after);

    //  The notifier's entry and its key pair are gone: init makes a new pair and
    //  appends its entry after everything else, which stays as it was.
    char *text = s_chunk_text (edited);
    assert_non_null (text);
    char *entry = strstr (text, "  - key:");
    char *notifier = NULL;
    for (; entry; entry = strstr (entry + 1, "  - key:"))
        if (strncmp (strstr (entry, "identity: "), "identity: notifier\n", 19) == 0)
            notifier = entry;
    assert_non_null (notifier);
    char *next = strstr (notifier + 1, "  - key:");
    assert_non_null (next);
    memmove (notifier, next, strlen (next) + 1);
    s_write_text (identities, text);
    snprintf (path, sizeof path, "%s/keys/notifier.cert", fixture->state);
    assert_int_equal (unlink (path), 0);
    snprintf (path, sizeof path, "%s/keys/notifier.cert_secret", fixture->state);
    assert_int_equal (unlink (path), 0);
    assert_int_equal (s_init (fixture, false, error, sizeof error), 0);
    assert_true (s_noted (fixture, "appended", identities));
    after = s_slurp (identities);
    assert_true (zchunk_size (after) > strlen (text));
    assert_memory_equal (zchunk_data (after), text, strlen (text));
    assert_non_null (memmem ((char *) zchunk_data (after) + strlen (text), zchunk_size (after) - strlen (text),
                             "identity: notifier\n", 19));
    zchunk_destroy (&after);

    //  The auditor's entry removed by hand (its key stays): not put back, but reported.
    entry = strstr (text, "identity: auditor\n");
    assert_non_null (entry);
    after = s_slurp (identities);
    char *current = s_chunk_text (after);
    zchunk_destroy (&after);
    char *auditor = strstr (current, "identity: auditor\n");
    assert_non_null (auditor);
    while (auditor > current && strncmp (auditor, "  - key:", 8) != 0)
        auditor--;
    next = strstr (auditor + 1, "  - key:");
    assert_non_null (next);
    memmove (auditor, next, strlen (next) + 1);
    s_write_text (identities, current);
    assert_int_equal (s_init (fixture, false, error, sizeof error), 0);
    assert_true (s_noted (fixture, "kept", identities));
    after = s_slurp (identities);
    assert_int_equal (zchunk_size (after), strlen (current));
    assert_memory_equal (zchunk_data (after), current, strlen (current));
    bool warned = false;
    for (char *note = (char *) zlistx_first (fixture->notes); note; note = (char *) zlistx_next (fixture->notes))
        if (strstr (note, "no entry for the auditor certificate"))
            warned = true;
    assert_true (warned);
    zchunk_destroy (&after);
    free (current);
    free (text);
    zchunk_destroy (&edited);
    zchunk_destroy (&edited_roles);
    zchunk_destroy (&roles_after);
    al_config_destroy (&config);
}

//  `airlock identity add`: a key pair and an appended entry; every refusal leaves the
//  file and the keys directory as they were.
static void
test_identity_add_appends_or_refuses (void **state)
{
    fixture_t *fixture = *state;
    char error [1024] = "";
    assert_int_equal (s_init (fixture, false, error, sizeof error), 0);
    char identities [512], config_path [512], path [600];
    snprintf (identities, sizeof identities, "%s/policy/identities.yaml", fixture->state);
    snprintf (config_path, sizeof config_path, "%s/airlock.yaml", fixture->state);
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    assert_non_null (config);
    assert_int_equal (al_init_identity_add (config, "docs-1", "docs-specialist", NULL, NULL, NULL,
                                            error, sizeof error), 0);
    snprintf (path, sizeof path, "%s/keys/docs-1.cert_secret", fixture->state);
    assert_int_equal (s_mode (path), 0600);
    char role [64] = "";
    assert_int_equal (al_init_client_identity (config, "docs-1", role, sizeof role, error, sizeof error), 0);
    assert_string_equal (role, "docs-specialist");
    zchunk_t *before = s_slurp (identities);
    struct {
        const char *name, *role, *person, *why;
    } refusals [] = {
        { "docs-1", "backend-specialist", NULL, "identity 'docs-1' is taken" },
        { "qa", "qa", NULL, "identity 'qa' is taken" },
        { "new-1", "no-such-role", NULL, "unknown role 'no-such-role'" },
        { "Bad Name", "ci", NULL, "not an identity name" },
        { "broker", "ci", NULL, "not an identity name" },
        { "new-2", "ci", "al\"ice", "person" },
    };
    for (size_t i = 0; i < sizeof refusals / sizeof refusals [0]; i++) {
        error [0] = 0;
        assert_int_equal (al_init_identity_add (config, refusals [i].name, refusals [i].role, refusals [i].person,
                                                NULL, NULL, error, sizeof error), -1);
        if (!strstr (error, refusals [i].why))
            fail_msg ("refusal %zu: '%s' does not say '%s'", i, error, refusals [i].why);
        zchunk_t *after = s_slurp (identities);
        assert_true (s_same_bytes (after, before));
        zchunk_destroy (&after);
    }
    snprintf (path, sizeof path, "%s/keys/new-2.cert", fixture->state);
    struct stat st;
    assert_int_not_equal (stat (path, &st), 0);
    //  A key file already named so: refused, the file kept.
    snprintf (path, sizeof path, "%s/keys/stray.cert", fixture->state);
    s_write_text (path, "not mine\n");
    assert_int_equal (al_init_identity_add (config, "stray", "ci", NULL, NULL, NULL, error, sizeof error), -1);
    assert_non_null (strstr (error, "the name is taken by a key"));
    assert_int_equal (stat (path, &st), 0);
    //  Humans are never a client identity; unknown names neither.
    assert_int_equal (al_init_client_identity (config, "approver", role, sizeof role, error, sizeof error), -1);
    assert_non_null (strstr (error, "human role"));
    assert_int_equal (al_init_client_identity (config, "nobody", role, sizeof role, error, sizeof error), -1);
    assert_non_null (strstr (error, "no identity 'nobody'"));
    //  A list in flow style cannot be appended to: refused, nothing changed.
    s_write_text (identities, "identities: [{key: \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\", identity: a, role: ci}]\n");
    before = (zchunk_destroy (&before), s_slurp (identities));
    assert_int_equal (al_init_identity_add (config, "flow-1", "ci", NULL, NULL, NULL, error, sizeof error), -1);
    assert_non_null (strstr (error, "add the entry by hand"));
    zchunk_t *after = s_slurp (identities);
    assert_true (s_same_bytes (after, before));
    zchunk_destroy (&after);
    snprintf (path, sizeof path, "%s/keys/flow-1.cert_secret", fixture->state);
    assert_int_not_equal (stat (path, &st), 0);
    //  The shipped empty list `identities: []` takes its first entry.
    s_write_text (identities, "# mine\nidentities: []   # none yet\n");
    assert_int_equal (al_init_identity_add (config, "first-1", "ci", "bob", NULL, NULL, error, sizeof error), 0);
    after = s_slurp (identities);
    char *text = s_chunk_text (after);
    assert_non_null (strstr (text, "# mine\nidentities: \n  - key: \""));
    assert_non_null (strstr (text, "    identity: first-1\n    role: ci\n    person: \"bob\"\n   # none yet\n"));
    free (text);
    zchunk_destroy (&after);
    zchunk_destroy (&before);
    al_config_destroy (&config);
}

static void
test_half_certificate_is_an_error (void **state)
{
    fixture_t *fixture = *state;
    char error [512] = "";
    assert_int_equal (s_init (fixture, false, error, sizeof error), 0);
    char secret [512];
    char public_path [512];
    snprintf (secret, sizeof secret, "%s/keys/qa.cert_secret", fixture->state);
    snprintf (public_path, sizeof public_path, "%s/keys/qa.cert", fixture->state);
    zchunk_t *before = s_slurp (public_path);
    assert_int_equal (unlink (secret), 0);
    assert_int_equal (s_init (fixture, false, error, sizeof error), -1);
    assert_non_null (strstr (error, public_path));
    assert_non_null (strstr (error, "never replaces a key"));
    // Nothing replaced it.
    struct stat st;
    assert_int_not_equal (stat (secret, &st), 0);
    zchunk_t *after = s_slurp (public_path);
    assert_true (zchunk_size (after) == zchunk_size (before)
              && memcmp (zchunk_data (after), zchunk_data (before), zchunk_size (after)) == 0);
    zchunk_destroy (&before);
    zchunk_destroy (&after);
}

static void
test_loose_modes_are_tightened (void **state)
{
    fixture_t *fixture = *state;
    char error [512] = "";
    assert_int_equal (s_init (fixture, false, error, sizeof error), 0);
    char path [512];
    snprintf (path, sizeof path, "%s/keys/monitor.cert_secret", fixture->state);
    assert_int_equal (chmod (path, 0644), 0);
    char keys [512];
    snprintf (keys, sizeof keys, "%s/keys", fixture->state);
    assert_int_equal (chmod (keys, 0755), 0);
    assert_int_equal (s_init (fixture, false, error, sizeof error), 0);
    assert_int_equal (s_mode (path), 0600);
    assert_int_equal (s_mode (keys), 0700);
}

static void
test_bad_inputs_are_errors (void **state)
{
    fixture_t *fixture = *state;
    char error [512] = "";
    al_init_options_t options = { "/nonexistent/policy", false };
    assert_int_equal (al_init_state_dir (fixture->state, &options, NULL, NULL, error, sizeof error), -1);
    assert_non_null (strstr (error, "/nonexistent/policy"));

    // A corrupt checkpoint key is reported, never replaced.
    assert_int_equal (s_init (fixture, false, error, sizeof error), 0);
    char path [512];
    snprintf (path, sizeof path, "%s/keys/checkpoint.key", fixture->state);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "not hex\n");
    fclose (file);
    assert_int_equal (s_init (fixture, false, error, sizeof error), -1);
    assert_non_null (strstr (error, "checkpoint.key"));

    // A file where the state directory should be.
    char blocker [512];
    snprintf (blocker, sizeof blocker, "%s/file", fixture->dir);
    file = fopen (blocker, "w");
    assert_non_null (file);
    fclose (file);
    options.policy_source = NULL;
    assert_int_equal (al_init_state_dir (blocker, &options, NULL, NULL, error, sizeof error), -1);
    assert_non_null (strstr (error, "not a directory"));
}

static void
test_policy_source_from_environment (void **state)
{
    fixture_t *fixture = *state;
    char source [256];
    char path [512];
    snprintf (source, sizeof source, "%s/custom-policy", fixture->dir);
    assert_int_equal (mkdir (source, 0755), 0);
    snprintf (path, sizeof path, "%s/roles.yaml", source);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "# custom\n");
    fclose (file);
    setenv ("AIRLOCK_POLICY_DIR", source, 1);
    char error [512] = "";
    int rc = s_init (fixture, false, error, sizeof error);
    unsetenv ("AIRLOCK_POLICY_DIR");
    assert_int_equal (rc, 0);
    snprintf (path, sizeof path, "%s/policy/roles.yaml", fixture->state);
    zchunk_t *copied = s_slurp (path);
    assert_int_equal (zchunk_size (copied), strlen ("# custom\n"));
    assert_memory_equal (zchunk_data (copied), "# custom\n", zchunk_size (copied));
    zchunk_destroy (&copied);
    // Only what the source holds is copied; identities.yaml is always generated.
    snprintf (path, sizeof path, "%s/policy/approvers.yaml", fixture->state);
    struct stat st;
    assert_int_not_equal (stat (path, &st), 0);
    snprintf (path, sizeof path, "%s/policy/identities.yaml", fixture->state);
    assert_int_equal (stat (path, &st), 0);
}

//  Key files are checked at load: a secret readable by group or others is refused by
//  the broker (its CURVE secret and its checkpoint key), an agent and a subscriber, with
//  the path, the mode and the fix.
static void
test_loose_secret_keys_are_refused_at_load (void **state)
{
    fixture_t *fixture = *state;
    char error [1024] = "";
    assert_int_equal (s_init (fixture, false, error, sizeof error), 0);
    char config_path [512], path [600], expected [1400];
    snprintf (config_path, sizeof config_path, "%s/airlock.yaml", fixture->state);
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    assert_non_null (config);
    const char *secrets [] = { "keys/ci.cert_secret", "keys/monitor.cert_secret", "keys/broker.cert_secret",
                               "keys/checkpoint.key" };
    for (size_t i = 0; i < 4; i++) {
        snprintf (path, sizeof path, "%s/%s", fixture->state, secrets [i]);
        assert_int_equal (chmod (path, i == 1 ? 0640 : 0644), 0);
        snprintf (expected, sizeof expected, "%s: mode %s: a secret key must be readable by its owner only (chmod 600 %s)",
                  path, i == 1 ? "0640" : "0644", path);
        error [0] = 0;
        if (i == 0) {
            al_agent_t *agent = al_agent_new_for_role (config, "ci", false, error, sizeof error);
            assert_null (agent);
        }
        else
        if (i == 1) {
            al_subscriber_t *subscriber = al_subscriber_new (config, "monitor", error, sizeof error);
            assert_null (subscriber);
        }
        else {
            al_broker_t *broker = al_broker_new (config, error, sizeof error);
            assert_null (broker);
        }
        assert_string_equal (error, expected);
        assert_int_equal (chmod (path, 0600), 0);
    }
    al_config_destroy (&config);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_creates_a_complete_state_dir, setup, teardown),
        cmocka_unit_test_setup_teardown (test_rerun_keeps_every_key, setup, teardown),
        cmocka_unit_test_setup_teardown (test_config_is_kept_unless_forced, setup, teardown),
        cmocka_unit_test_setup_teardown (test_identities_are_never_rewritten_and_policy_kept, setup, teardown),
        cmocka_unit_test_setup_teardown (test_identity_add_appends_or_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown (test_loose_secret_keys_are_refused_at_load, setup, teardown),
        cmocka_unit_test_setup_teardown (test_half_certificate_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown (test_loose_modes_are_tightened, setup, teardown),
        cmocka_unit_test_setup_teardown (test_bad_inputs_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown (test_policy_source_from_environment, setup, teardown),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    zsys_shutdown ();
    return failed;
}
