"""__main__.py: `python3 -m airlock_client submit|status|approvals|rollback ...` for humans.

The same calls an AI agent makes through the Client class, with the airlock command's
conventions: --config FILE (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml),
--json for data, exit codes 0 ok, 1 refused or not found, 2 usage error, unreadable
configuration or broker unreachable. Connects with the state directory's `ci`
certificate unless --identity (an agent's own identity), --role or --cert says otherwise
(never a human's approval key: this client cannot approve).
"""
import argparse
import json
import sys
import time

from .client import AirlockError, Client, ConfigError, Denied, KeyRefused, NotFound, SUBMIT_TYPES, Timeout

EXIT_OK, EXIT_BAD, EXIT_USAGE = 0, 1, 2


def _parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)")
    common.add_argument("--role", default="ci", help="connect with the state directory's certificate of this role "
                        "(default ci)")
    common.add_argument("--identity", help="connect as this identity of identities.yaml (its key: KEYS/NAME.cert, "
                        "made by `airlock identity add NAME --role ROLE`); one per AI agent")
    common.add_argument("--cert", help="connect with this czmq certificate instead (secret half: CERT_secret)")
    common.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the broker (default 10)")
    common.add_argument("--json", action="store_true", help="print JSON")
    parser = argparse.ArgumentParser(prog="python3 -m airlock_client",
                                     description="Hand releases to airlock and follow them.")
    commands = parser.add_subparsers(dest="command", required=True)
    submit = commands.add_parser("submit", parents=[common], help="hand a release candidate to the pipeline")
    submit.add_argument("--service", required=True)
    submit.add_argument("--version", required=True)
    submit.add_argument("--artifact", required=True, help="artifact path, file:// URI or image reference")
    submit.add_argument("--digest", required=True, help="sha256:HEX of the artifact")
    submit.add_argument("--type", default="standard", choices=sorted(SUBMIT_TYPES))
    submit.add_argument("--changes", help="file with one change per line")
    submit.add_argument("--summary", default="")
    submit.add_argument("--id", help="release id (default rel-SERVICE-VERSION-RANDOM)")
    status = commands.add_parser("status", parents=[common], help="a release's state, or agents and releases")
    status.add_argument("release", nargs="?")
    commands.add_parser("approvals", parents=[common], help="production requests waiting for a human")
    rollback = commands.add_parser("rollback", parents=[common], help="request a production rollback")
    rollback.add_argument("release")
    return parser


def _print_status(result):
    if "release" not in result:
        for agent in result["agents"]:
            print("%-24s %-20s %s" % (agent["identity"], agent["role"], "alive" if agent["alive"] else "dead"))
        for release in result["releases"]:
            print("%-40s %-16s %-14s %s" % (release.get("release_id", ""), release.get("service", ""),
                                            release.get("version", ""), release.get("state", "")))
        return
    release = result["release"]
    print("release   %s\nservice   %s %s (%s)\nstate     %s: %s" % (
        release.get("release_id"), release.get("service"), release.get("version"), release.get("type"),
        release.get("state"), release.get("detail")))
    if result["awaiting_approval"]:
        print("approval  waiting: airlock approve %s-prod" % release.get("release_id"))
    for entry in release.get("history", []):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.get("time_ms", 0) / 1000))
        print("  %s  %-12s %s" % (stamp, entry.get("state", ""), entry.get("detail", "")))


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        client = Client.from_config(args.config, role=args.role, certificate=args.cert, identity=args.identity,
                                    name="python-" + args.command)
    except (ConfigError, ValueError) as error:
        print("airlock_client: %s" % error, file=sys.stderr)
        return EXIT_USAGE
    try:
        client.connect(args.timeout)
        if args.command == "submit":
            changes = []
            if args.changes:
                with open(args.changes, encoding="utf-8") as handle:
                    changes = [line.strip() for line in handle if line.strip()][:100]
            release_id = client.submit_release(args.service, args.version, args.artifact, args.digest,
                                               type=args.type, changes=changes, summary=args.summary,
                                               release_id=args.id, timeout=args.timeout)
            if args.json:
                print(json.dumps({"release_id": release_id, "audit_sequence": client.last_ack.audit_sequence}))
            else:
                print("submitted %s %s as release %s (audit #%d)" % (args.service, args.version, release_id,
                                                                   client.last_ack.audit_sequence))
        elif args.command == "status":
            result = client.status(args.release, timeout=args.timeout)
            if args.json:
                print(json.dumps(result, indent=2))
            else:
                _print_status(result)
        elif args.command == "approvals":
            requests = client.approvals(timeout=args.timeout)
            if args.json:
                print(json.dumps(requests, indent=2))
            else:
                for request in requests:
                    print("%-40s %-16s %-10s %s" % (request["request_id"], request["service"], request["version"],
                                                   request["deployment_type"]))
                print("%d request(s) waiting; a human approves with: airlock approve REQUEST" % len(requests))
        else:
            release_id = client.request_rollback(args.release, timeout=args.timeout)
            print(json.dumps({"release_id": release_id}) if args.json
                  else "rollback of %s requested as release %s" % (args.release, release_id))
        return EXIT_OK
    except (Denied, NotFound) as error:
        print("airlock_client %s: %s" % (args.command, error), file=sys.stderr)
        return EXIT_BAD
    except (Timeout, KeyRefused, AirlockError, ValueError, OSError) as error:
        print("airlock_client %s: %s" % (args.command, error), file=sys.stderr)
        return EXIT_USAGE
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
