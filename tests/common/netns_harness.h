/*  netns_harness.h: network namespaces joined by veth links, for tests of airlock on
    several hosts (test_netns, test_netns_pg).

    A test names its namespaces and the links between them; nh_new makes them with
    names unique to the run (al-test-NAME-PID; the veth ends alLa/alLb + the pid), brings
    every loopback and link end up, and gives link L's two ends the addresses
    10.99.SUBNET.1 (namespace a) and 10.99.SUBNET.2 (namespace b) in a /24. Nothing else
    is made: no default route, no bridge to the host, so no traffic leaves them.
    nh_delete stops whatever still runs in them (a process started in a namespace
    outlives its deletion) and deletes them; it is idempotent, so a teardown calls it
    also after a failed set-up.

    Needs root and iproute2 (/usr/sbin/ip). Nothing here asserts: nh_new returns NULL
    with why in error, and says in *unsupported whether the reason is that this system
    cannot make namespaces at all (the test then skips) rather than a failure.
*/
#ifndef NETNS_HARNESS_H_INCLUDED
#define NETNS_HARNESS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define NH_MAX_NAMESPACES 8
#define NH_MAX_LINKS 8

//  Link between namespaces A and B (indexes into the names), subnet 10.99.SUBNET.0/24.
typedef struct {
    int a, b;
    int subnet;
} nh_link_t;

typedef struct _nh_net_t nh_net_t;

//  The COUNT namespaces NAMES and the LINK_COUNT LINKS. NULL with why in error;
//  *unsupported is then true when namespaces cannot be made here (not root, no iproute2,
//  `ip netns add` refused).
nh_net_t *nh_new (const char *const *names, size_t count, const nh_link_t *links, size_t link_count,
                  bool *unsupported, char *error, size_t error_size);

//  Kill what still runs in the namespaces, delete them (idempotent), free. NULL-safe.
void nh_destroy (nh_net_t **self_p);

//  Kill what still runs in the namespaces and delete them; idempotent. How many of
//  them `ip netns list` still shows afterwards (0: nothing of the run is left).
int nh_delete (nh_net_t *self);

//  The run's name of namespace INDEX ("al-test-agents-4242").
const char *nh_ns (nh_net_t *self, int index);

//  The interface name of link L's end in namespace a (SIDE 0) or b (SIDE 1).
const char *nh_veth (nh_net_t *self, int link, int side);

#endif
