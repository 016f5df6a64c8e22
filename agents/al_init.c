/*  al_init.c: `airlock init`: create or complete a state directory (see al_init.h).

    Every step is idempotent and checks what is already there before it writes: keys are
    created with O_EXCL semantics (a file that exists is reused, never replaced), and the
    two generated text files (identities.yaml, airlock.yaml) are written to a temporary
    file and renamed, so a crash never leaves half a file. Secrets are written into a
    0700 directory and set to 0600 before anything else can use them.
*/
#include "agents/al_init.h"
#include "base/al_config.h"
#include "policies/al_identities.h"
#include "policies/al_policy.h"

#include <assert.h>
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef AIRLOCK_DEFAULT_POLICY_DIR
#   error "AIRLOCK_DEFAULT_POLICY_DIR must be defined by the build"
#endif
//  Where the default policy is installed, relative to the installed binary's directory.
#ifndef AIRLOCK_INSTALLED_POLICY_DIR
#   error "AIRLOCK_INSTALLED_POLICY_DIR must be defined by the build"
#endif

static const char *s_roles [] = {
    "orchestrator", "qa", "deploy-manager", "monitor", "notifier", "auditor", "approver", "ci", "console"
};
#define S_ROLE_COUNT (sizeof s_roles / sizeof s_roles [0])

size_t
al_init_role_count (void)
{
    return S_ROLE_COUNT;
}

const char *
al_init_role_at (size_t index)
{
    assert (index < S_ROLE_COUNT);
    return s_roles [index];
}

typedef struct {
    al_init_note_fn *note;
    void *note_arg;
    char *error;
    size_t error_size;
} s_context_t;

static void
s_note (s_context_t *context, const char *action, const char *path)
{
    if (context->note)
        context->note (context->note_arg, action, path);
}

static int
s_fail (s_context_t *context, const char *path, const char *what)
{
    snprintf (context->error, context->error_size, "%s: %s", path, what);
    return -1;
}

static int
s_fail_errno (s_context_t *context, const char *path, const char *doing)
{
    char what [256];
    snprintf (what, sizeof what, "cannot %s: %s", doing, strerror (errno));
    return s_fail (context, path, what);
}

//  DIR/NAME into path (PATH_MAX); false if it does not fit.
static bool
s_join (char *path, const char *dir, const char *name)
{
    int length = snprintf (path, PATH_MAX, "%s/%s", dir, name);
    return length > 0 && length < PATH_MAX;
}

static bool
s_exists (const char *path)
{
    struct stat st;
    return lstat (path, &st) == 0;
}

//  mkdir -p with MODE for the last component; an existing one is kept. If enforce, the
//  mode of an existing directory is set to MODE too (keys/ must stay private).
static int
s_make_dir (s_context_t *context, const char *path, mode_t mode, bool enforce)
{
    struct stat st;
    if (stat (path, &st) == 0) {
        if (!S_ISDIR (st.st_mode))
            return s_fail (context, path, "exists and is not a directory");
        if (enforce && (st.st_mode & 07777) != mode && chmod (path, mode) != 0)
            return s_fail_errno (context, path, "set the directory's mode");
        s_note (context, "kept", path);
        return 0;
    }
    char parent [PATH_MAX];
    snprintf (parent, sizeof parent, "%s", path);
    char *slash = strrchr (parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        if (!s_exists (parent)) {
            s_context_t quiet = *context;
            quiet.note = NULL;
            if (s_make_dir (&quiet, parent, 0755, false) != 0)
                return -1;
        }
    }
    if (mkdir (path, mode) != 0 && errno != EEXIST)
        return s_fail_errno (context, path, "create the directory");
    if (chmod (path, mode) != 0)        // mkdir's mode is filtered by the umask
        return s_fail_errno (context, path, "set the directory's mode");
    s_note (context, "created", path);
    return 0;
}

//  Write SIZE bytes to PATH with MODE. exclusive: fail if it exists (keys); else the file
//  is written to PATH.tmp and renamed over PATH.
static int
s_write_file (s_context_t *context, const char *path, const void *data, size_t size,
              mode_t mode, bool exclusive)
{
    char temporary [PATH_MAX];
    if (snprintf (temporary, sizeof temporary, "%s.tmp", path) >= (int) sizeof temporary)
        return s_fail (context, path, "path too long");
    const char *target = exclusive ? path : temporary;
    int fd = open (target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && !exclusive && errno == EEXIST) {
        // A temporary file left by an interrupted run.
        unlink (temporary);
        fd = open (target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    }
    if (fd < 0)
        return s_fail_errno (context, target, "create the file");
    const uint8_t *cursor = data;
    size_t left = size;
    while (left > 0) {
        ssize_t written = write (fd, cursor, left);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0) {
            int saved = errno;
            close (fd);
            unlink (target);
            errno = saved;
            return s_fail_errno (context, target, "write");
        }
        cursor += written;
        left -= (size_t) written;
    }
    if (fchmod (fd, mode) != 0 || fsync (fd) != 0) {
        int saved = errno;
        close (fd);
        unlink (target);
        errno = saved;
        return s_fail_errno (context, target, "set the mode and sync");
    }
    if (close (fd) != 0)
        return s_fail_errno (context, target, "close");
    if (!exclusive && rename (temporary, path) != 0) {
        unlink (temporary);
        return s_fail_errno (context, path, "rename the new file into place");
    }
    return 0;
}

//  Read a file of at most LIMIT bytes into a NUL-terminated buffer (caller frees) and
//  its size (if size_p), or NULL.
static char *
s_read_file (const char *path, size_t limit, size_t *size_p)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *text = malloc (limit + 1);
    assert (text);
    size_t size = fread (text, 1, limit + 1, file);
    bool failed = ferror (file) || size > limit;
    fclose (file);
    if (failed) {
        free (text);
        return NULL;
    }
    text [size] = 0;
    if (size_p)
        *size_p = size;
    return text;
}

static char *
s_read_text (const char *path, size_t limit)
{
    return s_read_file (path, limit, NULL);
}

//  A czmq certificate pair NAME.cert / NAME.cert_secret in KEYS: reuse it or make it.
//  Returns the loaded certificate (caller destroys) or NULL with error set.
static zcert_t *
s_certificate (s_context_t *context, const char *keys, const char *name, bool *created)
{
    if (created)
        *created = false;
    char public_path [PATH_MAX];
    char secret_path [PATH_MAX];
    if (snprintf (public_path, sizeof public_path, "%s/%s.cert", keys, name) >= PATH_MAX
    ||  snprintf (secret_path, sizeof secret_path, "%s/%s.cert_secret", keys, name) >= PATH_MAX) {
        s_fail (context, keys, "path too long");
        return NULL;
    }
    bool has_public = s_exists (public_path);
    bool has_secret = s_exists (secret_path);
    zcert_t *cert = NULL;
    if (has_public && has_secret) {
        cert = zcert_load (public_path);
        uint8_t zero [32] = { 0 };
        if (!cert || memcmp (zcert_secret_key (cert), zero, 32) == 0) {
            zcert_destroy (&cert);
            s_fail (context, secret_path, "cannot read the certificate's secret key");
            return NULL;
        }
        // The public file must describe the same key as the secret one.
        char *text = s_read_text (public_path, 64 * 1024);
        bool matches = text && strstr (text, zcert_public_txt (cert)) != NULL;
        free (text);
        if (!matches) {
            zcert_destroy (&cert);
            s_fail (context, public_path, "does not hold the public key of its _secret file");
            return NULL;
        }
        // Never widen, always narrow: the secret stays private even if someone chmod'ed it.
        struct stat st;
        if (stat (secret_path, &st) == 0 && (st.st_mode & 077) != 0 && chmod (secret_path, 0600) != 0) {
            zcert_destroy (&cert);
            s_fail_errno (context, secret_path, "set mode 0600");
            return NULL;
        }
        s_note (context, "kept", public_path);
        s_note (context, "kept", secret_path);
        return cert;
    }
    if (has_public || has_secret) {
        s_fail (context, has_public ? public_path : secret_path,
                "exists without its other half; restore the missing file or remove both "
                "(init never replaces a key)");
        return NULL;
    }
    cert = zcert_new ();
    if (!cert) {
        s_fail (context, public_path, "cannot generate a CURVE key pair");
        return NULL;
    }
    zcert_set_meta (cert, "name", "%s", name);
    zcert_set_meta (cert, "created-by", "airlock init");
    // Secret first, so a public file never exists without its secret.
    if (zcert_save_secret (cert, secret_path) != 0) {
        s_fail_errno (context, secret_path, "write the secret certificate");
        goto failed;
    }
    if (chmod (secret_path, 0600) != 0) {
        s_fail_errno (context, secret_path, "set mode 0600");
        goto failed;
    }
    if (zcert_save_public (cert, public_path) != 0 || chmod (public_path, 0644) != 0) {
        s_fail_errno (context, public_path, "write the public certificate");
        goto failed;
    }
    s_note (context, "created", public_path);
    s_note (context, "created", secret_path);
    if (created)
        *created = true;
    return cert;
failed:
    zcert_destroy (&cert);
    return NULL;
}

static void
s_hex (const uint8_t *data, size_t size, char *text)
{
    sodium_bin2hex (text, size * 2 + 1, data, size);
}

//  The broker's Ed25519 checkpoint key: KEYS/checkpoint.key (secret, 128 hex digits and
//  a newline, 0600) and KEYS/checkpoint.pub (public, 64 hex digits).
static int
s_checkpoint_key (s_context_t *context, const char *keys)
{
    char secret_path [PATH_MAX];
    char public_path [PATH_MAX];
    if (!s_join (secret_path, keys, "checkpoint.key") || !s_join (public_path, keys, "checkpoint.pub"))
        return s_fail (context, keys, "path too long");
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES];
    uint8_t secret_key [crypto_sign_SECRETKEYBYTES];
    char text [crypto_sign_SECRETKEYBYTES * 2 + 2];
    int rc = -1;
    if (s_exists (secret_path)) {
        char *existing = s_read_text (secret_path, 4096);
        size_t length = 0;
        if (!existing
        ||  sodium_hex2bin (secret_key, sizeof secret_key, existing, strlen (existing), " \t\r\n",
                            &length, NULL) != 0
        ||  length != sizeof secret_key) {
            free (existing);
            s_fail (context, secret_path, "is not an Ed25519 secret key of 64 bytes in hex "
                    "(init never replaces a key: fix or remove it)");
            goto cleanup;
        }
        free (existing);
        if (chmod (secret_path, 0600) != 0) {
            s_fail_errno (context, secret_path, "set mode 0600");
            goto cleanup;
        }
        s_note (context, "kept", secret_path);
    }
    else {
        crypto_sign_keypair (public_key, secret_key);
        s_hex (secret_key, sizeof secret_key, text);
        strcat (text, "\n");
        if (s_write_file (context, secret_path, text, strlen (text), 0600, true) != 0)
            goto cleanup;
        s_note (context, "created", secret_path);
    }
    // The public key always follows from the secret one (the last 32 bytes).
    crypto_sign_ed25519_sk_to_pk (public_key, secret_key);
    s_hex (public_key, sizeof public_key, text);
    strcat (text, "\n");
    char *existing = s_read_text (public_path, 4096);
    if (existing && streq (existing, text))
        s_note (context, "kept", public_path);
    else {
        if (s_write_file (context, public_path, text, strlen (text), 0644, false) != 0) {
            free (existing);
            goto cleanup;
        }
        s_note (context, existing ? "rewritten" : "created", public_path);
    }
    free (existing);
    rc = 0;
cleanup:
    sodium_memzero (secret_key, sizeof secret_key);
    sodium_memzero (text, sizeof text);
    return rc;
}

//  Copy the regular files and directories of SOURCE into TARGET, keeping files that are
//  already there; identities.yaml is skipped (it is generated).
static int
s_copy_tree (s_context_t *context, const char *source, const char *target, bool top)
{
    DIR *dir = opendir (source);
    if (!dir)
        return s_fail_errno (context, source, "open the policy directory");
    int rc = 0;
    struct dirent *item;
    while (rc == 0 && (item = readdir (dir))) {
        if (item->d_name [0] == '.')
            continue;
        if (top && streq (item->d_name, "identities.yaml"))
            continue;
        char from [PATH_MAX];
        char to [PATH_MAX];
        if (snprintf (from, sizeof from, "%s/%s", source, item->d_name) >= (int) sizeof from
        ||  snprintf (to, sizeof to, "%s/%s", target, item->d_name) >= (int) sizeof to) {
            rc = s_fail (context, source, "a path in it is too long");
            break;
        }
        struct stat st;
        if (stat (from, &st) != 0) {
            rc = s_fail_errno (context, from, "stat");
            break;
        }
        if (S_ISDIR (st.st_mode)) {
            rc = s_make_dir (context, to, 0755, false);
            if (rc == 0)
                rc = s_copy_tree (context, from, to, false);
        }
        else
        if (S_ISREG (st.st_mode)) {
            if (s_exists (to)) {
                s_note (context, "kept", to);
                continue;
            }
            size_t size = 0;
            char *content = s_read_file (from, 16 * 1024 * 1024, &size);
            if (!content) {
                rc = s_fail_errno (context, from, "read");
                break;
            }
            rc = s_write_file (context, to, content, size, 0644, false);
            free (content);
            if (rc == 0)
                s_note (context, "created", to);
        }
    }
    closedir (dir);
    return rc;
}

//  Hold an exclusive lock on the policy directory while identities.yaml is read and
//  replaced (init and `identity add` may run at the same time). Returns the fd to close.
static int
s_lock_policy_dir (s_context_t *context, const char *policy_dir)
{
    int fd = open (policy_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return s_fail_errno (context, policy_dir, "open");
    if (flock (fd, LOCK_EX) != 0) {
        s_fail_errno (context, policy_dir, "lock");
        close (fd);
        return -1;
    }
    return fd;
}

//  identities.yaml already exists: it is the operator's now and is never regenerated. A
//  certificate this run created for a built-in role is appended (its identity = the role
//  name) unless that name is taken; a certificate that existed before but is not listed
//  is reported and left out (the operator may have removed it on purpose). A role the
//  state's own roles.yaml does not define (a policy copied before the role existed, such
//  as console) gets no entry: the broker would refuse the whole file for it.
static int
s_identities_complete (s_context_t *context, const char *policy_dir, const char *path, zcert_t **certs,
                       const bool *created)
{
    bool changed = false;
    al_policy_t *policy = al_policy_load (policy_dir, NULL);
    for (size_t index = 0; index < S_ROLE_COUNT; index++) {
        if (policy && !al_policy_role_exists (policy, s_roles [index])) {
            char *note = zsys_sprintf ("%s: no entry for the %s certificate: the policy's roles.yaml has no "
                                       "role %s (add it from the default policy to use it)", path,
                                       s_roles [index], s_roles [index]);
            s_note (context, "warning", note);
            zstr_free (&note);
            continue;
        }
        bool listed_key = false, listed_name = false;
        char error [1024];
        if (al_identities_lookup (path, zcert_public_txt (certs [index]), s_roles [index], &listed_key,
                                  &listed_name, error, sizeof error) != 0) {
            char *warning = zsys_sprintf ("kept %s as it is, but it does not parse: %s", path, error);
            s_note (context, "warning", warning);
            zstr_free (&warning);
            al_policy_destroy (&policy);
            return 0;
        }
        if (listed_key)
            continue;
        if (created [index] && !listed_name) {
            al_identity_entry_t entry = { zcert_public_txt (certs [index]), s_roles [index], s_roles [index], NULL };
            if (al_identities_append (path, &entry, error, sizeof error) != 0) {
                al_policy_destroy (&policy);
                return s_fail (context, path, error);
            }
            changed = true;
            continue;
        }
        char *warning = zsys_sprintf ("%s: no entry for the %s certificate (keys/%s.cert)%s: it cannot connect "
                                      "until an entry lists its key", path, s_roles [index], s_roles [index],
                                      listed_name ? "; its name is taken by another key" : "");
        s_note (context, "warning", warning);
        zstr_free (&warning);
    }
    al_policy_destroy (&policy);
    s_note (context, changed ? "appended" : "kept", path);
    return 0;
}

//  identities.yaml: written once, with one entry per role certificate (identity = role
//  name); an existing one is completed, never rewritten (s_identities_complete).
static int
s_identities (s_context_t *context, const char *policy_dir, zcert_t **certs, const bool *created)
{
    char path [PATH_MAX];
    if (!s_join (path, policy_dir, "identities.yaml"))
        return s_fail (context, policy_dir, "path too long");
    if (s_exists (path))
        return s_identities_complete (context, policy_dir, path, certs, created);
    zchunk_t *text = zchunk_new (NULL, 4096);
    assert (text);
    zchunk_extend (text, "", 0);
    const char *header =
        "# identities.yaml: CURVE public key -> identity name -> role.\n"
        "#\n"
        "# Written once by `airlock init` from the certificates in the keys directory; a\n"
        "# re-run never rewrites it (it only appends a certificate it had to create). The\n"
        "# broker takes a client's CURVE public key from the ZAP handshake and looks it up\n"
        "# here; an unknown key gets nothing. Add an identity (its own key pair, e.g. one per\n"
        "# AI agent) with `airlock identity add NAME --role ROLE [--person NAME]`; `person`\n"
        "# names the human behind an identity, as approvers.yaml spells them (four eyes: they\n"
        "# cannot approve a release submitted through it).\n"
        "identities:\n";
    zchunk_extend (text, header, strlen (header));
    for (size_t index = 0; index < S_ROLE_COUNT; index++) {
        char entry [256];
        int length = snprintf (entry, sizeof entry,
                               "  - key: \"%s\"\n    identity: %s\n    role: %s\n",
                               zcert_public_txt (certs [index]), s_roles [index], s_roles [index]);
        zchunk_extend (text, entry, (size_t) length);
    }
    int rc = s_write_file (context, path, zchunk_data (text), zchunk_size (text), 0644, false);
    if (rc == 0)
        s_note (context, "created", path);
    zchunk_destroy (&text);
    return rc;
}

//  airlock.yaml with every path absolute; an existing one is kept unless forced.
static int
s_config (s_context_t *context, const char *state_dir, bool force)
{
    char path [PATH_MAX];
    if (!s_join (path, state_dir, "airlock.yaml"))
        return s_fail (context, state_dir, "path too long");
    bool existed = s_exists (path);
    if (existed && !force) {
        char error [512];
        al_config_t *config = al_config_load (path, error, sizeof error);
        if (!config) {
            char *warning = zsys_sprintf ("kept %s, but it does not load: %s (re-run with "
                                          "--force-config to write a fresh one)", path, error);
            s_note (context, "warning", warning);
            zstr_free (&warning);
        }
        al_config_destroy (&config);
        s_note (context, "kept", path);
        return 0;
    }
    al_config_t *config = al_config_new (state_dir);
    if (!config)
        return s_fail (context, state_dir, "is not an absolute path");
    int rc = al_config_save (config, path, context->error, context->error_size);
    al_config_destroy (&config);
    if (rc == 0)
        s_note (context, existed ? "rewritten" : "created", path);
    return rc;
}

const char *
al_init_default_policy_dir (char *path, size_t size)
{
    assert (path);
    assert (size > 0);
    const char *environment = getenv ("AIRLOCK_POLICY_DIR");
    if (environment && *environment) {
        snprintf (path, size, "%s", environment);
        return path;
    }
    //  An installed binary finds the copy installed beside it, so that nothing depends on
    //  the source tree it was built from.
    char executable [PATH_MAX];
    ssize_t length = readlink ("/proc/self/exe", executable, sizeof executable - 1);
    if (length > 0) {
        executable [length] = '\0';
        char *slash = strrchr (executable, '/');
        if (slash) {
            *slash = '\0';
            struct stat info;
            int written = snprintf (path, size, "%s/%s", executable, AIRLOCK_INSTALLED_POLICY_DIR);
            if (written > 0 && (size_t) written < size
            &&  stat (path, &info) == 0 && S_ISDIR (info.st_mode))
                return path;
        }
    }
    snprintf (path, size, "%s", AIRLOCK_DEFAULT_POLICY_DIR);
    return path;
}

int
al_init_state_dir (const char *dir, const al_init_options_t *options,
                   al_init_note_fn *note, void *note_arg, char *error, size_t error_size)
{
    assert (dir);
    assert (options);
    s_context_t context = { note, note_arg, error, error_size };
    zcert_t *certs [S_ROLE_COUNT] = { NULL };
    bool created [S_ROLE_COUNT] = { false };
    zcert_t *broker = NULL;
    int rc = -1;
    int lock = -1;
    char state_dir [PATH_MAX];
    char keys [PATH_MAX];
    char policy_dir [PATH_MAX];
    char checkpoints [PATH_MAX];

    if (sodium_init () < 0) {
        s_fail (&context, "libsodium", "cannot initialise");
        goto cleanup;
    }
    char default_source [PATH_MAX];
    const char *source = options->policy_source;
    if (!source || !*source)
        source = al_init_default_policy_dir (default_source, sizeof default_source);
    struct stat st;
    if (stat (source, &st) != 0 || !S_ISDIR (st.st_mode)) {
        s_fail (&context, source, "the default policy directory does not exist "
                "(set AIRLOCK_POLICY_DIR)");
        goto cleanup;
    }
    if (!*dir) {
        s_fail (&context, "DIR", "is empty");
        goto cleanup;
    }
    bool existed = s_exists (dir);
    s_context_t quiet = context;
    quiet.note = NULL;
    if (s_make_dir (&quiet, dir, 0755, false) != 0)
        goto cleanup;
    if (!realpath (dir, state_dir)) {
        s_fail_errno (&context, dir, "resolve the path");
        goto cleanup;
    }
    s_note (&context, existed ? "kept" : "created", state_dir);
    if (strlen (state_dir) + 32 >= PATH_MAX) {
        s_fail (&context, state_dir, "path too long");
        goto cleanup;
    }
    if (!s_join (keys, state_dir, "keys") || !s_join (policy_dir, state_dir, "policy")
    ||  !s_join (checkpoints, state_dir, "checkpoints")) {
        s_fail (&context, state_dir, "path too long");
        goto cleanup;
    }

    if (s_make_dir (&context, keys, 0700, true) != 0)
        goto cleanup;
    broker = s_certificate (&context, keys, "broker", NULL);
    if (!broker)
        goto cleanup;
    for (size_t index = 0; index < S_ROLE_COUNT; index++) {
        certs [index] = s_certificate (&context, keys, s_roles [index], &created [index]);
        if (!certs [index])
            goto cleanup;
    }
    if (s_checkpoint_key (&context, keys) != 0)
        goto cleanup;

    if (s_make_dir (&context, policy_dir, 0755, false) != 0
    ||  s_copy_tree (&context, source, policy_dir, true) != 0
    ||  (lock = s_lock_policy_dir (&context, policy_dir)) < 0
    ||  s_identities (&context, policy_dir, certs, created) != 0)
        goto cleanup;
    if (s_make_dir (&context, checkpoints, 0700, false) != 0)
        goto cleanup;
    if (s_config (&context, state_dir, options->force_config) != 0)
        goto cleanup;

    // The default ipc:// endpoints live in the state directory; a Unix socket path
    // longer than sockaddr_un allows cannot be bound.
    struct sockaddr_un address;
    if (strlen (state_dir) + strlen ("/broker.ipc") >= sizeof address.sun_path) {
        char warning [PATH_MAX + 200];
        snprintf (warning, sizeof warning, "%s is too long for ipc:// endpoints (Unix sockets "
                  "allow %zu characters): set endpoints to tcp:// in airlock.yaml",
                  state_dir, sizeof address.sun_path - 1);
        s_note (&context, "warning", warning);
    }
    rc = 0;
cleanup:
    if (lock >= 0)
        close (lock);
    for (size_t index = 0; index < S_ROLE_COUNT; index++)
        zcert_destroy (&certs [index]);
    zcert_destroy (&broker);
    return rc;
}

//  ---- identities beyond the built-in roles -----------------------------------------------

//  The policy directory's policy, loaded; NULL with the first errors in context.
static al_policy_t *
s_load_policy (s_context_t *context, const char *policy_dir)
{
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (policy_dir, &errors);
    if (!policy) {
        size_t count = al_policy_errors_count (errors);
        char what [768];
        snprintf (what, sizeof what, "the policy does not load (%zu error%s; first: %s); fix it first "
                  "(airlock policy check)", count, count == 1 ? "" : "s", count ? al_policy_errors_at (errors, 0) : "?");
        s_fail (context, policy_dir, what);
    }
    al_policy_errors_destroy (&errors);
    return policy;
}

int
al_init_identity_add (const al_config_t *config, const char *name, const char *role, const char *person,
                      al_init_note_fn *note, void *note_arg, char *error, size_t error_size)
{
    assert (config && name && role);
    s_context_t context = { note, note_arg, error, error_size };
    const char *policy_dir = al_config_policy_dir (config);
    const char *keys = al_config_agents_keys_dir (config);
    char path [PATH_MAX], public_path [PATH_MAX], secret_path [PATH_MAX];
    if (!al_identities_valid_name (name))
        return s_fail (&context, name, "not an identity name: use 1-63 characters a-z, 0-9, '-', '_' "
                       "(and not 'broker')");
    if (!s_join (path, policy_dir, "identities.yaml")
    ||  snprintf (public_path, sizeof public_path, "%s/%s.cert", keys, name) >= PATH_MAX
    ||  snprintf (secret_path, sizeof secret_path, "%s/%s.cert_secret", keys, name) >= PATH_MAX)
        return s_fail (&context, policy_dir, "path too long");
    int rc = -1;
    zcert_t *cert = NULL;
    bool made_key = false;
    char *old_text = NULL;
    int lock = s_lock_policy_dir (&context, policy_dir);
    if (lock < 0)
        return -1;
    al_policy_t *policy = s_load_policy (&context, policy_dir);
    if (!policy)
        goto cleanup;
    if (!al_policy_role_kind (policy, role)) {
        char what [256];
        snprintf (what, sizeof what, "unknown role '%s' (not in roles.yaml)", role);
        s_fail (&context, policy_dir, what);
        goto cleanup;
    }
    if (al_policy_identity_by_name (policy, name, NULL, NULL, NULL)) {
        char what [256];
        snprintf (what, sizeof what, "identity '%s' is taken", name);
        s_fail (&context, path, what);
        goto cleanup;
    }
    if (s_exists (public_path) || s_exists (secret_path)) {
        s_fail (&context, s_exists (public_path) ? public_path : secret_path,
                "exists: the name is taken by a key (never replaced)");
        goto cleanup;
    }
    old_text = s_read_text (path, 1024 * 1024);
    cert = s_certificate (&context, keys, name, &made_key);
    if (!cert)
        goto cleanup;
    al_identity_entry_t entry = { zcert_public_txt (cert), name, role, person };
    char why [1024];
    if (al_identities_append (path, &entry, why, sizeof why) != 0) {
        s_fail (&context, path, why);
        goto cleanup;
    }
    //  The policy must still load with the new entry; else the file is put back.
    al_policy_destroy (&policy);
    policy = s_load_policy (&context, policy_dir);
    if (!policy) {
        if (old_text)
            s_write_file (&context, path, old_text, strlen (old_text), 0644, false);
        goto cleanup;
    }
    s_note (&context, "appended", path);
    rc = 0;
cleanup:
    if (rc != 0 && made_key) {
        unlink (public_path);
        unlink (secret_path);
    }
    zcert_destroy (&cert);
    al_policy_destroy (&policy);
    free (old_text);
    close (lock);
    return rc;
}

int
al_init_client_identity (const al_config_t *config, const char *name, char *role, size_t role_size,
                         char *error, size_t error_size)
{
    assert (config && name);
    s_context_t context = { NULL, NULL, error, error_size };
    if (!al_identities_valid_name (name))
        return s_fail (&context, name, "not an identity name");
    al_policy_t *policy = s_load_policy (&context, al_config_policy_dir (config));
    if (!policy)
        return -1;
    int rc = -1;
    zcert_t *cert = NULL;
    const char *listed_key = NULL, *listed_role = NULL;
    char public_path [PATH_MAX];
    snprintf (public_path, sizeof public_path, "%s/%s.cert", al_config_agents_keys_dir (config), name);
    if (!al_policy_identity_by_name (policy, name, &listed_key, &listed_role, NULL)) {
        char what [256];
        snprintf (what, sizeof what, "no identity '%s' (add one with airlock identity add %s --role ROLE)", name, name);
        s_fail (&context, "identities.yaml", what);
        goto cleanup;
    }
    const char *kind = al_policy_role_kind (policy, listed_role);
    if (kind && strcmp (kind, "human") == 0) {
        char what [256];
        snprintf (what, sizeof what, "identity '%s' has the human role '%s': an AI client never acts as a human",
                  name, listed_role);
        s_fail (&context, "identities.yaml", what);
        goto cleanup;
    }
    cert = zcert_load (public_path);
    if (!cert) {
        s_fail (&context, public_path, "cannot read the identity's certificate");
        goto cleanup;
    }
    if (strcmp (zcert_public_txt (cert), listed_key) != 0) {
        char what [256];
        snprintf (what, sizeof what, "holds another key than identities.yaml lists for '%s'", name);
        s_fail (&context, public_path, what);
        goto cleanup;
    }
    if (role && role_size)
        snprintf (role, role_size, "%s", listed_role);
    rc = 0;
cleanup:
    zcert_destroy (&cert);
    al_policy_destroy (&policy);
    return rc;
}
