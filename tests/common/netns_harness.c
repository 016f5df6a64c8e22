/*  netns_harness.c: network namespaces joined by veth links. See netns_harness.h. */
#include "netns_harness.h"
#include "proc_harness.h"
#include "base/al_error.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct _nh_net_t {
    char ns [NH_MAX_NAMESPACES][64];
    size_t ns_count;
    char veth [NH_MAX_LINKS][2][16];
    size_t link_count;
};

nh_net_t *
nh_new (const char *const *names, size_t count, const nh_link_t *links, size_t link_count,
        bool *unsupported, char *error, size_t error_size)
{
    assert (count > 0 && count <= NH_MAX_NAMESPACES && link_count <= NH_MAX_LINKS);
    *unsupported = false;
    if (geteuid () != 0 || access ("/usr/sbin/ip", X_OK) != 0) {
        *unsupported = true;
        al_error_set (error, error_size, "network namespaces need root and iproute2 (/usr/sbin/ip)");
        return NULL;
    }
    nh_net_t *self = calloc (1, sizeof *self);
    assert (self);
    int pid = (int) getpid ();
    for (size_t i = 0; i < count; i++)
        snprintf (self->ns [i], sizeof self->ns [i], "al-test-%s-%d", names [i], pid);
    for (size_t l = 0; l < link_count; l++)
        for (int side = 0; side < 2; side++)
            snprintf (self->veth [l][side], sizeof self->veth [l][side], "al%zu%c%d", l, side? 'b': 'a', pid % 1000000);
    if (ph_shell ("ip netns add %s", self->ns [0]) != 0) {
        *unsupported = true;
        al_error_set (error, error_size, "`ip netns add` failed: this system cannot make network namespaces");
        free (self);
        return NULL;
    }
    self->ns_count = 1;
    for (size_t i = 1; i < count; i++, self->ns_count++)
        if (ph_shell ("ip netns add %s", self->ns [i]) != 0) {
            al_error_set (error, error_size, "ip netns add %s failed", self->ns [i]);
            goto failed;
        }
    for (size_t i = 0; i < count; i++)
        if (ph_shell ("ip -n %s link set lo up", self->ns [i]) != 0) {
            al_error_set (error, error_size, "ip -n %s link set lo up failed", self->ns [i]);
            goto failed;
        }
    for (size_t l = 0; l < link_count; l++) {
        const char *ns_a = self->ns [links [l].a], *ns_b = self->ns [links [l].b];
        self->link_count = l + 1;
        if (ph_shell ("ip link add %s netns %s type veth peer name %s netns %s", self->veth [l][0], ns_a,
                      self->veth [l][1], ns_b) != 0
        ||  ph_shell ("ip -n %s addr add 10.99.%d.1/24 dev %s && ip -n %s link set %s up", ns_a, links [l].subnet,
                      self->veth [l][0], ns_a, self->veth [l][0]) != 0
        ||  ph_shell ("ip -n %s addr add 10.99.%d.2/24 dev %s && ip -n %s link set %s up", ns_b, links [l].subnet,
                      self->veth [l][1], ns_b, self->veth [l][1]) != 0) {
            al_error_set (error, error_size, "link %zu (%s - %s, 10.99.%d.0/24) could not be made", l, ns_a, ns_b,
                          links [l].subnet);
            goto failed;
        }
    }
    return self;
failed:
    nh_destroy (&self);
    return NULL;
}

int
nh_delete (nh_net_t *self)
{
    //  Processes started in a namespace (the demo service instances deploy-manager
    //  started) live on after it is deleted: stop them first.
    for (size_t i = 0; i < self->ns_count; i++)
        ph_shell ("ip netns pids %s 2>/dev/null | xargs -r kill -9 2>/dev/null", self->ns [i]);
    for (size_t i = 0; i < self->ns_count; i++)
        ph_shell ("ip netns del %s 2>/dev/null", self->ns [i]);
    int left = 0;
    for (size_t i = 0; i < self->ns_count; i++)
        left += ph_shell ("ip netns list | grep -q -e '%s'", self->ns [i]) == 0;
    return left;
}

void
nh_destroy (nh_net_t **self_p)
{
    assert (self_p);
    if (!*self_p)
        return;
    nh_delete (*self_p);
    free (*self_p);
    *self_p = NULL;
}

const char *
nh_ns (nh_net_t *self, int index)
{
    assert (index >= 0 && (size_t) index < self->ns_count);
    return self->ns [index];
}

const char *
nh_veth (nh_net_t *self, int link, int side)
{
    assert (link >= 0 && (size_t) link < self->link_count && (side == 0 || side == 1));
    return self->veth [link][side];
}
