"""The ``procon`` command.

``procon crd`` prints the CRD, ``procon chart`` writes the chart's per-processor
parts; ``procon dev ...`` runs the local control plane
and demo. Subcommands import what they need lazily, so ``procon crd`` stays
fast and works without a Go toolchain.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from procon.emulators.cli import add_parser as add_emulate_parser

DEFAULT_STATE_DIR = Path(".procon-dev")


def _cmd_crd(args: argparse.Namespace) -> int:
    from procon.api.crd import crd_yaml, helm_crd_template

    sys.stdout.write(helm_crd_template() if args.helm else crd_yaml())
    return 0


def _cmd_chart(args: argparse.Namespace) -> int:
    from procon import chart

    try:
        changed = chart.stale(args.root) if args.check else chart.write(args.root)
    except chart.ChartError as error:
        print(f"procon: {error}", file=sys.stderr)
        return 1
    for path in changed:
        print(f"{'stale' if args.check else 'rewrote'}: {path}")
    return 1 if args.check and changed else 0


def _cmd_cluster_build(_: argparse.Namespace) -> int:
    from procon.dev.toolchain import ensure_toolchain

    toolchain = ensure_toolchain()
    print(toolchain.bin_dir)
    return 0


def _cmd_cluster_up(args: argparse.Namespace) -> int:
    from procon.dev import cluster

    started = cluster.up(args.state_dir, timeout=args.timeout)
    print(f"control plane ready at {started.server}")
    print(f"  export KUBECONFIG={started.kubeconfig}")
    print(f"  export PATH={started.bin_dir}:$PATH")
    return 0


def _cmd_cluster_down(args: argparse.Namespace) -> int:
    from procon.dev import cluster

    stopped = cluster.down(args.state_dir)
    print("control plane stopped" if stopped else "no control plane was running")
    return 0


def _cmd_cluster_status(args: argparse.Namespace) -> int:
    from procon.dev import cluster

    running = cluster.status(args.state_dir)
    if running is None:
        print("not running")
        return 1
    print(f"running (pid {running.pid}) at {running.server}; kubeconfig {running.kubeconfig}")
    return 0


def _without_the_sync_kubernetes_client() -> None:
    """Make ``import kubernetes`` fail in the operator's process.

    procon talks to Kubernetes through kubernetes_asyncio alone. kopf imports the synchronous
    client too whenever it is installed, to recognise its model objects (which procon never
    hands it) and to log in with it; that import alone costs the operator about 35 MiB of
    resident memory. Without it kopf logs in through kubernetes_asyncio, which reads the same
    kubeconfig or in-cluster service account. Marking the name as absent in ``sys.modules``
    is Python's documented way to make an import raise ImportError.
    """
    if "kubernetes" not in sys.modules:
        sys.modules["kubernetes"] = None  # type: ignore[assignment]


def _cmd_run(args: argparse.Namespace) -> int:
    import logging

    _without_the_sync_kubernetes_client()
    import kopf

    from procon import processors
    from procon.k8s.leader_election import LeaderElectionSettings
    from procon.k8s.sharding import shard_selector
    from procon.redaction import install_log_redaction
    from procon.settings import OperatorSettings, SettingsError

    try:
        settings = OperatorSettings.from_env()
        selector = shard_selector()
        election = LeaderElectionSettings.from_env(
            shard_selector=selector, watched_namespaces=settings.namespaces
        )
    except SettingsError as error:
        print(f"procon: {error}", file=sys.stderr)
        return 2
    level = args.log_level or settings.log_level
    # kopf's own set-up: one root handler, text or JSON (kopf ships a JSON formatter).
    kopf.configure(
        debug=level == "debug",
        quiet=level in ("warning", "error"),
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
    )
    if level == "error":
        logging.getLogger().setLevel(logging.ERROR)
    # Its debug output is whole response bodies, Secret data included.
    logging.getLogger("kubernetes_asyncio.client.rest").setLevel(logging.INFO)
    if level != "debug":
        # One line per HTTP request and per kopf handler call drowns what matters.
        chatty_clients = [name for p in processors.plugins() for name in p.chatty_loggers]
        for chatty in ("httpx", "kopf.objects", *chatty_clients):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    install_log_redaction()
    import procon.k8s.handlers  # noqa: F401 - registers the handlers with kopf
    from procon.k8s import supervisor

    # kopf alone, or only while holding the lease (procon.k8s.supervisor says how).
    supervisor.run(settings, election, shard_selector=selector, liveness_endpoint=args.liveness)
    return 0


def _cmd_dev_up(args: argparse.Namespace) -> int:
    from procon.dev import demo

    return demo.up(args.state_dir, timeout=args.timeout)


def _cmd_dev_down(args: argparse.Namespace) -> int:
    from procon.dev import demo

    return demo.down(args.state_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="procon", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)

    crd = commands.add_parser("crd", help="print the ProcessorConnection CRD generated from the API types")
    crd.add_argument(
        "--helm",
        action="store_true",
        help="print the Helm chart's templates/crd.yaml instead (behind crds.enabled, with crds.keep)",
    )
    crd.set_defaults(func=_cmd_crd)

    chart = commands.add_parser(
        "chart", help="write the chart's per-processor values, schema and environment from the registry"
    )
    chart.add_argument("--root", type=Path, default=Path(), help="the procon checkout (default: here)")
    chart.add_argument("--check", action="store_true", help="only list the files that are out of date")
    chart.set_defaults(func=_cmd_chart)

    run = commands.add_parser("run", help="run the operator (configured by PROCON_* environment variables)")
    run.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning", "error"],
        help="overrides PROCON_LOG_LEVEL (default info)",
    )
    run.add_argument(
        "--liveness", default=None, help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz"
    )
    run.set_defaults(func=_cmd_run)

    dev = commands.add_parser("dev", help="local development: a real control plane and the demo")
    dev_commands = dev.add_subparsers(dest="dev_command", required=True)

    def with_state_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--state-dir",
            type=Path,
            default=DEFAULT_STATE_DIR,
            help=f"where certificates, data, logs and the kubeconfig live (default: {DEFAULT_STATE_DIR})",
        )
        return p

    def with_timeout(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for readiness")
        return p

    dev_up = with_timeout(with_state_dir(dev_commands.add_parser("up", help="start the local demo")))
    dev_up.set_defaults(func=_cmd_dev_up)
    dev_down = with_state_dir(dev_commands.add_parser("down", help="stop the local demo"))
    dev_down.set_defaults(func=_cmd_dev_down)

    cluster = dev_commands.add_parser("cluster", help="the local control plane alone")
    cluster_commands = cluster.add_subparsers(dest="cluster_command", required=True)
    build = cluster_commands.add_parser("build", help="build (or find cached) control-plane binaries")
    build.set_defaults(func=_cmd_cluster_build)
    c_up = with_timeout(with_state_dir(cluster_commands.add_parser("up", help="start the control plane")))
    c_up.set_defaults(func=_cmd_cluster_up)
    c_down = with_state_dir(cluster_commands.add_parser("down", help="stop the control plane"))
    c_down.set_defaults(func=_cmd_cluster_down)
    c_status = with_state_dir(cluster_commands.add_parser("status", help="is it running?"))
    c_status.set_defaults(func=_cmd_cluster_status)

    add_emulate_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # shown as one line, not a traceback, for the errors we expect
        from procon.dev.cluster import ClusterError
        from procon.dev.toolchain import ToolchainError

        if isinstance(error, ClusterError | ToolchainError):
            print(f"procon: {error}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
