/*  test_driver_registry.c: the process driver's instance registry (config state_file).

    The registry is what lets a new owner stop the instances of one that died without
    close. The central test plays that death for real: a forked child opens the driver,
    starts two demo-service instances, hands their pids and ports to us over a pipe and
    is killed with SIGKILL; the instances keep answering on their ports; a new open with
    the same state file stops them. The others check what must NOT be killed (a pid
    reused by another process: wrong start time; a zombie), that the file follows every
    start and stop, and that a registry we cannot trust fails the open, naming the file.

    We are a child subreaper, so the orphaned instances become our children: the
    teardown kills and reaps whatever is left, whether or not the test failed. Start
    times are read from /proc here independently of the driver. Nothing asserts timing.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "deploy/al_driver.h"
#include "deploy/al_probe.h"
#include "driver_test_util.h"

#define S_MAX 8

typedef struct {
    char *dir;
    char evidence [4096];
    char state_file [4096];
    char service_sh [4096];
    const char *command [5];
    al_driver_config_t config;
    al_driver_t *d;
    pid_t owner;                    // the forked owner, until killed
    pid_t extra [S_MAX];            // processes a test made itself, killed in teardown
    size_t extra_count;
} s_fixture_t;

static int
s_setup (void **state)
{
    dt_become_subreaper ();
    s_fixture_t *self = calloc (1, sizeof (s_fixture_t));
    assert_non_null (self);
    self->dir = dt_temp_dir ("al-registry");
    snprintf (self->evidence, sizeof (self->evidence), "%s/evidence", self->dir);
    snprintf (self->state_file, sizeof (self->state_file), "%s/state dir/instances.json", self->dir);
    dt_script ("service.sh", self->service_sh, sizeof (self->service_sh));
    self->command [0] = "/bin/sh";
    self->command [1] = self->service_sh;
    self->command [2] = "{{artifact}}";
    self->command [3] = "{{version}}";
    self->config.command = self->command;
    self->config.evidence_dir = self->evidence;
    self->config.state_file = self->state_file;
    self->config.stop_timeout_ms = 5000;
    self->config.probe_timeout_ms = 2000;
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *self = *state;
    if (self->owner > 0)
        kill (self->owner, SIGKILL);
    for (size_t i = 0; i < self->extra_count; i++)
        kill (-self->extra [i], SIGKILL);
    al_driver_destroy (&self->d);
    dt_reap_all (2000);
    dt_remove_tree (self->dir);
    free (self->dir);
    free (self);
    return 0;
}

//  Field 22 of /proc/PID/stat, read here without the driver's code. 0 if unreadable.
static unsigned long long
s_start_time (pid_t pid)
{
    char path [64], line [1024] = "";
    snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    bool got = fgets (line, sizeof (line), file) != NULL;
    fclose (file);
    const char *field = got ? strrchr (line, ')') : NULL;
    for (int index = 2; field && index < 22; index++)
        field = strchr (field + 1, ' ');
    return field ? strtoull (field + 1, NULL, 10) : 0;
}

//  Is pid running (exists and is not a zombie)?
static bool
s_running (pid_t pid)
{
    char path [64], line [1024] = "";
    snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    bool got = fgets (line, sizeof (line), file) != NULL;
    fclose (file);
    const char *close = got ? strrchr (line, ')') : NULL;
    return close && close [2] != 'Z' && close [2] != 'X';
}

static bool
s_port_answers (int port)
{
    char url [128];
    snprintf (url, sizeof (url), "http://127.0.0.1:%d/healthz", port);
    al_probe_result_t result;
    return al_probe_http (url, 2000, &result);
}

static void
s_open (s_fixture_t *self)
{
    char error [2048];
    self->d = al_driver_open ("process", &self->config, error, sizeof (error));
    if (!self->d)
        fail_msg ("open: %s", error);
}

static al_driver_status_t
s_start (al_driver_t *d, int index, const char *const *extra_env, al_driver_instance_t *info,
         char *error, size_t error_size)
{
    al_driver_spec_t spec = {
        .vars = { "reg", "2.0.1", dt_demo_service (), "", "test" },
        .instance = index, .extra_env = extra_env
    };
    return al_driver_start_instance (d, &spec, info, error, error_size);
}

//  The registry's instances array (new reference), failing the test if the file is
//  not a well-formed registry.
static json_t *
s_registry (const s_fixture_t *self)
{
    json_error_t parse_error;
    json_t *root = json_load_file (self->state_file, 0, &parse_error);
    if (!root)
        fail_msg ("%s:%d: %s", self->state_file, parse_error.line, parse_error.text);
    assert_int_equal (json_integer_value (json_object_get (root, "format")), 1);
    json_t *instances = json_object_get (root, "instances");
    assert_true (json_is_array (instances));
    json_incref (instances);
    json_decref (root);
    return instances;
}

static void
s_write_file (const char *path, const char *text, mode_t mode)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    assert_int_equal (fputs (text, file) >= 0, 1);
    assert_int_equal (fclose (file), 0);
    assert_int_equal (chmod (path, mode), 0);
}

static char *
s_read_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    assert_non_null (file);
    char *text = calloc (1, 65536);
    assert_non_null (text);
    assert_true (fread (text, 1, 65535, file) < 65535);
    fclose (file);
    return text;
}

//  A process of our own in its own group that sleeps until killed; kept for teardown.
static pid_t
s_sleeper (s_fixture_t *self)
{
    assert_true (self->extra_count < S_MAX);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        setpgid (0, 0);
        execl ("/bin/sleep", "sleep", "600", (char *) NULL);
        _exit (127);
    }
    setpgid (pid, pid);
    self->extra [self->extra_count++] = pid;
    //  Wait for the exec, so the start time we read is of the process that stays.
    for (int i = 0; i < 500; i++) {
        char path [64], target [256] = "";
        snprintf (path, sizeof (path), "/proc/%d/exe", (int) pid);
        ssize_t length = readlink (path, target, sizeof (target) - 1);
        if (length > 0 && strstr (target, "sleep"))
            break;
        usleep (10000);
    }
    return pid;
}

static void
test_registry_follows_starts_and_stops (void **state)
{
    s_fixture_t *self = *state;
    s_open (self);
    assert_int_equal (al_driver_stale_stopped (self->d), 0);
    //  Open took the (missing) file over: it exists and is empty.
    json_t *instances = s_registry (self);
    assert_int_equal (json_array_size (instances), 0);
    json_decref (instances);
    struct stat info;
    assert_int_equal (stat (self->state_file, &info), 0);
    assert_int_equal (info.st_mode & 077, 0);

    al_driver_instance_t started [2];
    char error [2048];
    for (int i = 0; i < 2; i++)
        if (s_start (self->d, i, NULL, &started [i], error, sizeof (error)) != AL_DRIVER_OK)
            fail_msg ("start: %s", error);
    instances = s_registry (self);
    assert_int_equal (json_array_size (instances), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *entry = json_array_get (instances, i);
        assert_string_equal (json_string_value (json_object_get (entry, "id")), started [i].id);
        assert_int_equal (json_integer_value (json_object_get (entry, "pid")), started [i].pid);
        assert_int_equal (json_integer_value (json_object_get (entry, "pgid")), getpgid (started [i].pid));
        assert_int_equal (json_integer_value (json_object_get (entry, "port")), started [i].port);
        assert_string_equal (json_string_value (json_object_get (entry, "set")), "default");
        assert_string_equal (json_string_value (json_object_get (entry, "version")), "2.0.1");
        unsigned long long start_time = s_start_time (started [i].pid);
        assert_true (start_time > 0);
        assert_int_equal ((unsigned long long) json_integer_value (json_object_get (entry, "start_time")),
                          start_time);
    }
    json_decref (instances);

    al_driver_stop_t stopped;
    assert_int_equal (al_driver_stop_instance (self->d, started [0].id, 0, &stopped, error, sizeof (error)),
                      AL_DRIVER_OK);
    instances = s_registry (self);
    assert_int_equal (json_array_size (instances), 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (instances, 0), "id")),
                         started [1].id);
    json_decref (instances);

    //  An instance that dies on its own leaves the registry at the next call.
    assert_int_equal (kill (started [1].pid, SIGKILL), 0);
    al_driver_instance_t listed [S_MAX];
    size_t count;
    for (int i = 0; i < 500; i++) {
        assert_int_equal (al_driver_list_instances (self->d, listed, S_MAX, &count, error, sizeof (error)),
                          AL_DRIVER_OK);
        if (!listed [1].running)
            break;
        usleep (10000);
    }
    assert_false (listed [1].running);
    instances = s_registry (self);
    assert_int_equal (json_array_size (instances), 0);
    json_decref (instances);

    //  A crash at start leaves nothing recorded either.
    const char *crash [] = { "CRASH_AT_START=1", NULL };
    al_driver_instance_t failed;
    assert_int_equal (s_start (self->d, 2, crash, &failed, error, sizeof (error)), AL_DRIVER_ERR_FAILED);
    instances = s_registry (self);
    assert_int_equal (json_array_size (instances), 0);
    json_decref (instances);

    //  And close, after starting one more, records that nothing runs.
    if (s_start (self->d, 3, NULL, &started [0], error, sizeof (error)) != AL_DRIVER_OK)
        fail_msg ("start: %s", error);
    instances = s_registry (self);
    assert_int_equal (json_array_size (instances), 1);
    json_decref (instances);
    al_driver_destroy (&self->d);
    instances = s_registry (self);
    assert_int_equal (json_array_size (instances), 0);
    json_decref (instances);
}

typedef struct {
    pid_t pid;
    int port;
} s_started_t;

//  The owner that will be killed: open, start two instances, report them, wait to die.
//  Runs in the forked child: no cmocka here, only _exit.
static void
s_owner_main (s_fixture_t *self, int report_fd)
{
    char error [2048];
    al_driver_t *d = al_driver_open ("process", &self->config, error, sizeof (error));
    if (!d)
        _exit (2);
    s_started_t started [2];
    for (int i = 0; i < 2; i++) {
        al_driver_instance_t info;
        if (s_start (d, i, NULL, &info, error, sizeof (error)) != AL_DRIVER_OK)
            _exit (3);
        started [i] = (s_started_t) { info.pid, info.port };
    }
    if (write (report_fd, started, sizeof (started)) != (ssize_t) sizeof (started))
        _exit (4);
    while (true)
        pause ();
}

static void
test_owner_killed_leftovers_stopped_by_next_open (void **state)
{
    s_fixture_t *self = *state;
    dt_demo_service ();             // checked here: the owner cannot fail a test
    int report [2];
    assert_int_equal (pipe (report), 0);
    self->owner = fork ();
    assert_true (self->owner >= 0);
    if (self->owner == 0) {
        close (report [0]);
        s_owner_main (self, report [1]);
    }
    close (report [1]);
    s_started_t started [2];
    struct pollfd ready = { .fd = report [0], .events = POLLIN };
    assert_int_equal (poll (&ready, 1, 60000), 1);
    ssize_t got = read (report [0], started, sizeof (started));
    close (report [0]);
    if (got != (ssize_t) sizeof (started)) {
        int status = 0;
        waitpid (self->owner, &status, 0);
        self->owner = 0;
        fail_msg ("the owner failed before reporting (exit %d)", WEXITSTATUS (status));
    }
    for (int i = 0; i < 2; i++)
        self->extra [self->extra_count++] = started [i].pid;

    //  The owner dies the hard way: no close, its log pump gone.
    assert_int_equal (kill (self->owner, SIGKILL), 0);
    assert_int_equal (waitpid (self->owner, NULL, 0), self->owner);
    self->owner = 0;
    for (int i = 0; i < 2; i++) {
        assert_true (s_running (started [i].pid));
        assert_true (s_port_answers (started [i].port));
    }

    s_open (self);
    assert_int_equal (al_driver_stale_stopped (self->d), 2);
    for (int i = 0; i < 2; i++) {
        assert_false (s_port_answers (started [i].port));
        assert_true (dt_pid_gone (started [i].pid));
    }
    json_t *instances = s_registry (self);
    assert_int_equal (json_array_size (instances), 0);
    json_decref (instances);

    //  A second open after a clean close finds nothing to stop.
    al_driver_destroy (&self->d);
    s_open (self);
    assert_int_equal (al_driver_stale_stopped (self->d), 0);
}

static void
test_reused_pid_and_zombie_left_alone (void **state)
{
    s_fixture_t *self = *state;
    //  Our own pid is recorded too, with another start time. Its pgid is our pid, not
    //  our group: should the driver wrongly act, it kills this test, not ctest's group.
    pid_t reused = s_sleeper (self);            // plays a stranger that got a recorded pid
    pid_t leftover = s_sleeper (self);          // plays a real leftover
    pid_t zombie = fork ();
    assert_true (zombie >= 0);
    if (zombie == 0)
        _exit (0);
    self->extra [self->extra_count++] = zombie;
    for (int i = 0; i < 500 && s_running (zombie); i++)
        usleep (10000);
    assert_false (s_running (zombie));
    unsigned long long zombie_start = s_start_time (zombie);
    assert_true (zombie_start > 0);

    char text [2048];
    snprintf (text, sizeof (text),
              "{\"format\": 1, \"instances\": ["
              "{\"id\": \"self-0.1\", \"pid\": %d, \"pgid\": %d, \"start_time\": %llu, \"port\": 1},"
              "{\"id\": \"reused-0.2\", \"pid\": %d, \"pgid\": %d, \"start_time\": %llu, \"port\": 1},"
              "{\"id\": \"zombie-0.3\", \"pid\": %d, \"pgid\": %d, \"start_time\": %llu, \"port\": 1},"
              "{\"id\": \"leftover-0.4\", \"pid\": %d, \"pgid\": %d, \"start_time\": %llu, \"port\": 1}"
              "]}",
              (int) getpid (), (int) getpid (), s_start_time (getpid ()) + 1,
              (int) reused, (int) reused, s_start_time (reused) + 7,
              (int) zombie, (int) zombie, zombie_start,
              (int) leftover, (int) leftover, s_start_time (leftover));
    char directory [4096];
    snprintf (directory, sizeof (directory), "%s/state dir", self->dir);
    assert_int_equal (mkdir (directory, 0700), 0);
    s_write_file (self->state_file, text, 0600);

    s_open (self);
    assert_int_equal (al_driver_stale_stopped (self->d), 1);
    assert_true (s_running (reused));
    assert_true (dt_pid_gone (leftover));
    json_t *instances = s_registry (self);
    assert_int_equal (json_array_size (instances), 0);
    json_decref (instances);
}

//  The owner was killed while rewriting the registry right after a spawn: the temporary
//  file (complete, not yet renamed) alone names the new instance. The next open stops
//  it too, and removes that file and a half-written one (found by tests/chaos).
static void
test_unrenamed_registry_rewrite_stopped (void **state)
{
    s_fixture_t *self = *state;
    pid_t leftover = s_sleeper (self);
    char directory [4096], temporary [4200], half [4200], text [1024];
    snprintf (directory, sizeof (directory), "%s/state dir", self->dir);
    assert_int_equal (mkdir (directory, 0700), 0);
    s_write_file (self->state_file, "{\"format\": 1, \"instances\": []}", 0600);
    snprintf (temporary, sizeof (temporary), "%s.Ab1x9Q", self->state_file);
    snprintf (text, sizeof (text), "{\"format\": 1, \"instances\": ["
              "{\"id\": \"spawned-0.1\", \"pid\": %d, \"pgid\": %d, \"start_time\": %llu, \"port\": 1}]}",
              (int) leftover, (int) leftover, s_start_time (leftover));
    s_write_file (temporary, text, 0600);
    snprintf (half, sizeof (half), "%s.Zz0000", self->state_file);
    s_write_file (half, "{\"format\": 1, \"instances\": [{\"id\"", 0600);

    s_open (self);
    assert_int_equal (al_driver_stale_stopped (self->d), 1);
    assert_true (dt_pid_gone (leftover));
    assert_int_equal (access (temporary, F_OK), -1);
    assert_int_equal (access (half, F_OK), -1);
    json_t *instances = s_registry (self);
    assert_int_equal (json_array_size (instances), 0);
    json_decref (instances);
}

//  The same through base/al_file's temporary name ("<registry>.tmp-XXXXXX"), the one
//  al_instances_write leaves once it writes through al_file_write_atomic.
static void
test_unrenamed_al_file_rewrite_stopped (void **state)
{
    s_fixture_t *self = *state;
    pid_t leftover = s_sleeper (self);
    char directory [4096], temporary [4200], text [1024];
    snprintf (directory, sizeof (directory), "%s/state dir", self->dir);
    assert_int_equal (mkdir (directory, 0700), 0);
    snprintf (temporary, sizeof (temporary), "%s.tmp-k3Jd8a", self->state_file);
    snprintf (text, sizeof (text), "{\"format\": 1, \"instances\": ["
              "{\"id\": \"spawned-0.1\", \"pid\": %d, \"pgid\": %d, \"start_time\": %llu, \"port\": 1}]}",
              (int) leftover, (int) leftover, s_start_time (leftover));
    s_write_file (temporary, text, 0600);

    s_open (self);
    assert_int_equal (al_driver_stale_stopped (self->d), 1);
    assert_true (dt_pid_gone (leftover));
    assert_int_equal (access (temporary, F_OK), -1);
}

//  An instance's program runs only once the registry names it: the driver holds the
//  child at al_child's gate (tests/base/test_child proves the gate itself). Named, it
//  runs, and the durable rewrite with file_sd.json follows; when the registry cannot be
//  written, the start fails and the program never ran (a marker it would write stays
//  absent).
static void
test_instance_runs_only_once_named (void **state)
{
    s_fixture_t *self = *state;
    char marker [4200], wrapper [4200], text [12000];
    snprintf (marker, sizeof (marker), "%s/ran", self->dir);
    snprintf (wrapper, sizeof (wrapper), "%s/wrapper.sh", self->dir);
    snprintf (text, sizeof (text), "touch '%s'\nexec /bin/sh '%s' \"$@\"\n", marker, self->service_sh);
    s_write_file (wrapper, text, 0700);
    self->command [1] = wrapper;
    s_open (self);

    al_driver_instance_t info;
    char error [2048] = "";
    if (s_start (self->d, 0, NULL, &info, error, sizeof (error)) != AL_DRIVER_OK)
        fail_msg ("start: %s", error);
    assert_int_equal (access (marker, F_OK), 0);
    json_t *instances = s_registry (self);
    assert_int_equal (json_array_size (instances), 1);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (instances, 0), "pid")), info.pid);
    json_decref (instances);
    char sd_path [4200];
    snprintf (sd_path, sizeof (sd_path), "%s/state dir/file_sd.json", self->dir);
    char *sd = s_read_file (sd_path);
    assert_non_null (strstr (sd, info.id));
    free (sd);
    al_driver_stop_t stopped;
    assert_int_equal (al_driver_stop_instance (self->d, info.id, 0, &stopped, error, sizeof (error)), AL_DRIVER_OK);
    assert_int_equal (unlink (marker), 0);

    //  The registry cannot be replaced (a directory now holds its name): not started,
    //  never run.
    assert_int_equal (unlink (self->state_file), 0);
    assert_int_equal (mkdir (self->state_file, 0700), 0);
    al_driver_status_t status = s_start (self->d, 1, NULL, &info, error, sizeof (error));
    assert_int_not_equal (status, AL_DRIVER_OK);
    if (!strstr (error, "not started") || !strstr (error, self->state_file))
        fail_msg ("error \"%s\" does not say the instance was not started for its registry", error);
    assert_int_equal (access (marker, F_OK), -1);
    assert_int_equal (rmdir (self->state_file), 0);
}

//  Open must fail naming the file, and leave the file as it was.
static void
s_assert_refused (s_fixture_t *self, const char *text, mode_t mode, const char *reason)
{
    s_write_file (self->state_file, text, mode);
    char error [2048] = "";
    al_driver_t *d = al_driver_open ("process", &self->config, error, sizeof (error));
    if (d) {
        al_driver_destroy (&d);
        fail_msg ("open accepted the registry %s", text);
    }
    if (!strstr (error, self->state_file) || !strstr (error, reason))
        fail_msg ("error \"%s\" names neither %s nor \"%s\"", error, self->state_file, reason);
    char *after = s_read_file (self->state_file);
    assert_string_equal (after, text);
    free (after);
}

static void
test_untrusted_registry_fails_open (void **state)
{
    s_fixture_t *self = *state;
    char directory [4096];
    snprintf (directory, sizeof (directory), "%s/state dir", self->dir);
    assert_int_equal (mkdir (directory, 0700), 0);
    s_assert_refused (self, "{\"format\": 1, \"instances\": [ {\"id\": \"a\", ", 0600, ":1:");
    s_assert_refused (self, "[1, 2, 3]", 0600, "not an instance registry");
    s_assert_refused (self, "{\"format\": 1, \"instances\": [{\"id\": \"a\", \"pid\": \"12\", "
                      "\"pgid\": 12, \"start_time\": 5}]}", 0600, "instances[0].pid");
    s_assert_refused (self, "{\"format\": 1, \"instances\": [{\"id\": \"a\", \"pid\": 12, "
                      "\"pgid\": 1, \"start_time\": 5}]}", 0600, "instances[0].pgid");
    s_assert_refused (self, "{\"format\": 1, \"instances\": []}", 0622, "only we can write");

    //  Empty (or blank) means nothing was recorded: the open succeeds and takes it over.
    s_write_file (self->state_file, " \n", 0600);
    s_open (self);
    assert_int_equal (al_driver_stale_stopped (self->d), 0);
    json_t *instances = s_registry (self);
    assert_int_equal (json_array_size (instances), 0);
    json_decref (instances);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_registry_follows_starts_and_stops, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_owner_killed_leftovers_stopped_by_next_open, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reused_pid_and_zombie_left_alone, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unrenamed_registry_rewrite_stopped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unrenamed_al_file_rewrite_stopped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_instance_runs_only_once_named, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_untrusted_registry_fails_open, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
