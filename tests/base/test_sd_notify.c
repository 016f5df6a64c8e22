/*  test_sd_notify.c: al_sd_notify (systemd's notification protocol, by hand), and the
    broker and `airlock up` speaking it.

    A unix datagram socket in a temporary directory (and one in the abstract namespace)
    stands in for systemd's: what al_sd_notify sends must arrive byte for byte, nothing is
    sent without $NOTIFY_SOCKET, a malformed one is an error. Then the built `airlock
    broker` with NOTIFY_SOCKET and WATCHDOG_USEC set must send READY=1 (after binding:
    its endpoint answers) and then WATCHDOG=1 from its loop; under `airlock up` the
    broker sends READY=1 and no agent has NOTIFY_SOCKET in its environment.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "base/al_sd_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

//  Generous: the machine is shared and the broker loads its policy before it binds.
#define S_WAIT_MS 60000

typedef struct {
    char dir [256];
    char socket_path [300];
    int fd;
    pid_t child;
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "%s/al-sdnotify-XXXXXX", getenv ("TMPDIR")? getenv ("TMPDIR"): "/tmp");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->socket_path, sizeof f->socket_path, "%s/notify", f->dir);
    f->fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true (f->fd >= 0);
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    assert_true (strlen (f->socket_path) < sizeof address.sun_path);
    strcpy (address.sun_path, f->socket_path);
    assert_int_equal (bind (f->fd, (struct sockaddr *) &address, sizeof address), 0);
    f->child = -1;
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    if (f->child > 0) {
        kill (f->child, SIGTERM);
        waitpid (f->child, NULL, 0);
    }
    close (f->fd);
    al_sd_notify_forget ();
    char command [512];
    snprintf (command, sizeof command, "rm -rf '%s'", f->dir);
    if (system (command) != 0)
        fprintf (stderr, "test_sd_notify: could not remove %s\n", f->dir);
    free (f);
    return 0;
}

//  The next datagram on FD within timeout_ms into buffer (NUL-terminated); its length,
//  or -1 on timeout.
static ssize_t
s_receive (int fd, char *buffer, size_t size, int timeout_ms)
{
    struct pollfd item = { .fd = fd, .events = POLLIN };
    if (poll (&item, 1, timeout_ms) != 1)
        return -1;
    ssize_t length = recv (fd, buffer, size - 1, 0);
    if (length >= 0)
        buffer [length] = '\0';
    return length;
}

static void
test_sends_to_a_path_socket (void **state)
{
    fixture_t *f = *state;
    char buffer [512];
    unsetenv ("NOTIFY_SOCKET");
    assert_int_equal (al_sd_notify ("READY=1"), 0);
    assert_int_equal (s_receive (f->fd, buffer, sizeof buffer, 100), -1);

    setenv ("NOTIFY_SOCKET", f->socket_path, 1);
    assert_int_equal (al_sd_notify ("READY=1\nSTATUS=up"), 1);
    assert_int_equal (s_receive (f->fd, buffer, sizeof buffer, S_WAIT_MS), 17);
    assert_string_equal (buffer, "READY=1\nSTATUS=up");
}

static void
test_sends_to_an_abstract_socket (void **state)
{
    (void) state;
    char name [108];
    snprintf (name, sizeof name, "airlock-test-sd-notify-%d-%ld", (int) getpid (), (long) time (NULL));
    int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true (fd >= 0);
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    memcpy (address.sun_path + 1, name, strlen (name));
    socklen_t length = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + 1 + strlen (name));
    assert_int_equal (bind (fd, (struct sockaddr *) &address, length), 0);
    char variable [120];
    snprintf (variable, sizeof variable, "@%s", name);
    setenv ("NOTIFY_SOCKET", variable, 1);
    assert_int_equal (al_sd_notify ("WATCHDOG=1"), 1);
    char buffer [64];
    assert_int_equal (s_receive (fd, buffer, sizeof buffer, S_WAIT_MS), 10);
    assert_string_equal (buffer, "WATCHDOG=1");
    close (fd);
}

static void
test_malformed_socket_is_an_error (void **state)
{
    fixture_t *f = *state;
    setenv ("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal (al_sd_notify ("READY=1"), -1);
    assert_int_equal (errno, EINVAL);
    char long_path [300];
    memset (long_path, 'x', sizeof long_path - 1);
    long_path [0] = '/';
    long_path [sizeof long_path - 1] = '\0';
    setenv ("NOTIFY_SOCKET", long_path, 1);
    assert_int_equal (al_sd_notify ("READY=1"), -1);
    char missing [320];
    snprintf (missing, sizeof missing, "%s/nobody-listens", f->dir);
    setenv ("NOTIFY_SOCKET", missing, 1);
    assert_int_equal (al_sd_notify ("READY=1"), -1);
}

static void
test_watchdog_usec_and_forget (void **state)
{
    (void) state;
    unsetenv ("WATCHDOG_USEC");
    assert_int_equal (al_sd_watchdog_usec (), 0);
    setenv ("WATCHDOG_USEC", "30000000", 1);
    assert_int_equal (al_sd_watchdog_usec (), 30000000);
    setenv ("WATCHDOG_USEC", "12abc", 1);
    assert_int_equal (al_sd_watchdog_usec (), 0);
    setenv ("WATCHDOG_USEC", "-5", 1);
    assert_int_equal (al_sd_watchdog_usec (), 0);
    setenv ("WATCHDOG_USEC", "", 1);
    assert_int_equal (al_sd_watchdog_usec (), 0);
    setenv ("NOTIFY_SOCKET", "/x", 1);
    setenv ("WATCHDOG_USEC", "1", 1);
    setenv ("WATCHDOG_PID", "1", 1);
    al_sd_notify_forget ();
    assert_null (getenv ("NOTIFY_SOCKET"));
    assert_null (getenv ("WATCHDOG_USEC"));
    assert_null (getenv ("WATCHDOG_PID"));
}

//  A state directory made by the built `airlock init`, in f->dir/state.
static void
s_init_state (fixture_t *f, char *airlock, size_t size)
{
    const char *binary_dir = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (binary_dir);
    snprintf (airlock, size, "%s/airlock", binary_dir);
    char command [1024];
    snprintf (command, sizeof command, "'%s' init '%s/state' >/dev/null", airlock, f->dir);
    assert_int_equal (system (command), 0);
}

static pid_t
s_spawn (char *const argv [], const char *watchdog_usec, const char *socket_path)
{
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        setenv ("NOTIFY_SOCKET", socket_path, 1);
        if (watchdog_usec)
            setenv ("WATCHDOG_USEC", watchdog_usec, 1);
        int null = open ("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2 (null, STDOUT_FILENO);
            dup2 (null, STDERR_FILENO);
        }
        execv (argv [0], argv);
        _exit (127);
    }
    return pid;
}

//  Wait for a datagram that starts with PREFIX; fails the test on timeout.
static void
s_expect (fixture_t *f, const char *prefix, char *buffer, size_t size)
{
    struct timespec start;
    clock_gettime (CLOCK_MONOTONIC, &start);
    while (true) {
        struct timespec now;
        clock_gettime (CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed > S_WAIT_MS)
            fail_msg ("no '%s' notification within %d ms", prefix, S_WAIT_MS);
        if (s_receive (f->fd, buffer, size, 1000) > 0 && strncmp (buffer, prefix, strlen (prefix)) == 0)
            return;
    }
}

static void
test_broker_notifies_ready_then_watchdog (void **state)
{
    fixture_t *f = *state;
    char airlock [512];
    s_init_state (f, airlock, sizeof airlock);
    char config [512];
    snprintf (config, sizeof config, "%s/state/airlock.yaml", f->dir);
    char *argv [] = { airlock, "broker", "--config", config, NULL };
    f->child = s_spawn (argv, "400000", f->socket_path);      // ping every 200 ms
    char buffer [1024];
    s_expect (f, "READY=1", buffer, sizeof buffer);
    assert_non_null (strstr (buffer, "STATUS=broker listening on ipc://"));
    //  Bound before READY=1: the ROUTER's ipc file exists.
    char ipc [600];
    snprintf (ipc, sizeof ipc, "%s/state/broker.ipc", f->dir);
    struct stat info;
    assert_int_equal (stat (ipc, &info), 0);
    assert_true (S_ISSOCK (info.st_mode));
    s_expect (f, "WATCHDOG=1", buffer, sizeof buffer);
    s_expect (f, "WATCHDOG=1", buffer, sizeof buffer);
    assert_int_equal (kill (f->child, SIGTERM), 0);
    int status = 0;
    assert_int_equal (waitpid (f->child, &status, 0), f->child);
    f->child = -1;
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
}

//  Whether /proc/PID/environ (what the process was started with) holds NOTIFY_SOCKET=.
static bool
s_has_notify_socket (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/environ", (int) pid);
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    char entry [4096];
    bool found = false;
    size_t length = 0;
    int c;
    while ((c = fgetc (file)) != EOF) {
        if (c == '\0') {
            entry [length] = '\0';
            if (strncmp (entry, "NOTIFY_SOCKET=", 14) == 0)
                found = true;
            length = 0;
        }
        else
        if (length < sizeof entry - 1)
            entry [length++] = (char) c;
    }
    fclose (file);
    return found;
}

//  Whether PID has exec'd `airlock ... WORD` (its /proc/PID/cmdline holds WORD as an
//  argument). Before exec a forked child's environ still shows its parent's.
static bool
s_has_argument (pid_t pid, const char *word)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/cmdline", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    char text [1024];
    size_t length = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [length] = '\0';
    for (size_t at = 0; at < length; at += strlen (text + at) + 1)
        if (strcmp (text + at, word) == 0)
            return true;
    return false;
}

//  The pid in STATE/run/NAME.pid, waiting for the file to appear and the process to have
//  exec'd `airlock broker` or `airlock agent NAME`.
static pid_t
s_read_pid (fixture_t *f, const char *name)
{
    char path [600];
    snprintf (path, sizeof path, "%s/state/run/%s.pid", f->dir, name);
    for (int waited = 0; waited < S_WAIT_MS; waited += 100) {
        FILE *file = fopen (path, "r");
        if (file) {
            int pid = 0;
            int scanned = fscanf (file, "%d", &pid);
            fclose (file);
            if (scanned == 1 && pid > 0
            &&  s_has_argument ((pid_t) pid, strcmp (name, "broker") == 0? "broker": name))
                return (pid_t) pid;
        }
        usleep (100 * 1000);
    }
    fail_msg ("%s did not appear", path);
    return -1;
}

static void
test_up_gives_the_socket_to_the_broker_only (void **state)
{
    fixture_t *f = *state;
    char airlock [512];
    s_init_state (f, airlock, sizeof airlock);
    char state_dir [512];
    snprintf (state_dir, sizeof state_dir, "%s/state", f->dir);
    char path [600];
    snprintf (path, sizeof path, "%s/services.yaml", state_dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n  demo:\n    driver: process\n    instances: 1\n"
                   "    command: [\"/bin/true\"]\n");
    fclose (file);
    char *argv [] = { airlock, "up", "--state", state_dir, NULL };
    f->child = s_spawn (argv, NULL, f->socket_path);
    char buffer [1024];
    s_expect (f, "READY=1", buffer, sizeof buffer);
    pid_t broker = s_read_pid (f, "broker");
    assert_true (s_has_notify_socket (broker));
    const char *agents [] = { "orchestrator", "qa", "deploy-manager", "monitor", "notifier" };
    for (size_t index = 0; index < sizeof agents / sizeof agents [0]; index++)
        assert_false (s_has_notify_socket (s_read_pid (f, agents [index])));
    assert_int_equal (kill (f->child, SIGTERM), 0);
    int status = 0;
    assert_int_equal (waitpid (f->child, &status, 0), f->child);
    f->child = -1;
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_sends_to_a_path_socket, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_sends_to_an_abstract_socket, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_malformed_socket_is_an_error, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_watchdog_usec_and_forget, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_broker_notifies_ready_then_watchdog, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_up_gives_the_socket_to_the_broker_only, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
