"""The `oee` console script: one argparse tree, one Settings built from the environment.

Every subcommand is a `Command` in `commands()`: a name, its help, a function that adds its
arguments and a handler `(args, settings) -> exit code`. Infrastructure commands live here;
the application entrypoints (`oee run`, `worker`, `api`, `projector`) register in the marked
section of `commands()`.

A missing prerequisite (no java or mvn, a port taken, Maven unable to resolve Kafka, a service
that is not up) prints one line saying what to do and exits with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.metadata
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.errors import PrerequisiteError
from oee import startup

if TYPE_CHECKING:
    from pydantic import ValidationError

    from infra.services import ServiceStatus
    from oee.settings import Settings

# Each command imports what it needs when it runs: a worker's whole start-up (its imports
# included) then runs without the garbage collector (`oee.startup`), and `oee --help` is quick.

EXIT_PREREQUISITE = 2
Handler = Callable[[argparse.Namespace, "Settings"], int]


@dataclass(frozen=True, slots=True)
class Command:
    """One `oee <name> [action]` subcommand."""

    name: str
    help: str
    handler: Handler
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    # The handler turns the garbage collector back on itself, once its process is built
    # (`oee.startup`); every other handler runs with it on.
    resumes_collection: bool = False


# --- infrastructure ----------------------------------------------------------------------


def _infra_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--json", action="store_true",
                        help="status: one JSON array of the services, for scripts")


def _infra(args: argparse.Namespace, settings: Settings) -> int:
    if args.json and args.action != "status":
        args.parser.error("--json goes with status only")
    from infra.services import LocalServices

    services = LocalServices.from_settings(settings)
    if args.action == "up":
        services.up()
    elif args.action == "down":
        services.down()
        print("local services stopped")
        return 0
    statuses = services.status()
    if args.json:
        print(json.dumps([dataclasses.asdict(status) for status in statuses]))
    else:
        print("\n".join(_describe(status) for status in statuses))
    return 0 if all(status.running for status in statuses) else 1


def _describe(status: ServiceStatus) -> str:
    state = "running" if status.running else "stopped"
    origin = f"pid {status.pid}" if status.pid else ("local" if status.managed else "external")
    version = f" {status.version}" if status.version else ""
    return f"{status.name}{version}: {state} at {status.address} ({origin})"


def _topics_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("create",))


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from aiokafka.errors import KafkaConnectionError

    from infra.services import bootstrap_servers, kafka_reachable
    from infra.topics import ensure_topics

    bootstrap = bootstrap_servers(settings)
    unreachable = PrerequisiteError(
        f"Kafka is not reachable at {bootstrap}: start it with `oee infra up` "
        "or set KAFKA_BOOTSTRAP_SERVERS"
    )
    # Probe first: aiokafka would log its own connection error before ours.
    if not kafka_reachable(bootstrap):
        raise unreachable
    try:
        created = asyncio.run(ensure_topics(settings, bootstrap))
    except KafkaConnectionError:
        raise unreachable from None
    print(f"topics created: {', '.join(created)}" if created else "topics: all existed already")
    return 0


def _db_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("migrate",))


def _db(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from infra.services import database_url
    from projections.migrate import migrate

    dsn = database_url(settings)
    # Probe first, so only a failure to connect reads as "not reachable", not a bad migration.
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        raise PrerequisiteError(
            f"PostgreSQL is not reachable at {dsn} ({str(exc).strip().splitlines()[0]}): "
            "start it with `oee infra up` or set DATABASE_URL"
        ) from None
    applied = migrate(dsn, settings.db_schema)
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none pending"
    print(f"schema {settings.db_schema}: applied {names}")
    return 0


def _kafka_arguments(parser: argparse.ArgumentParser) -> None:
    from infra.kafka_tools import TOOLS

    parser.add_argument("tool", choices=sorted(TOOLS))
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="the tool's own arguments (`oee kafka TOOL --help` lists them)")


def _kafka(args: argparse.Namespace, settings: Settings) -> int:
    """Replace this process with the tool (so Ctrl-C and exit codes are the tool's own)."""
    from infra.kafka_tools import needs_cluster, require_java, tool_argv
    from infra.services import bootstrap_servers, kafka_reachable, local_broker

    require_java()
    bootstrap = bootstrap_servers(settings)
    if needs_cluster(args.args) and not kafka_reachable(bootstrap):
        raise PrerequisiteError(
            f"Kafka is not reachable at {bootstrap}: start it with `oee infra up`, "
            "set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap-server"
        )
    argv = tool_argv(local_broker(settings).ensure_libs(), args.tool, args.args, bootstrap)
    sys.stdout.flush()
    os.execvp(argv[0], argv)


def commands() -> list[Command]:
    """Every subcommand, in the order `oee --help` lists them."""
    return [
        Command("infra", "start, stop or inspect the local Kafka, PostgreSQL and schema "
                "registry", 
                _infra, _infra_arguments),
        Command("topics", "create every topic the engine uses (idempotent)",
                _topics, _topics_arguments),
        Command("db", "apply pending read-model migrations to DB_SCHEMA",
                _db, _db_arguments),
        Command("kafka", "run a standard Kafka tool (topics, consumer-groups, console-consumer, "
                "...) against the configured cluster", _kafka, _kafka_arguments),
        # --- application entrypoints -----------------------------------------------------
        Command("run", "run the whole system in the foreground (Ctrl-C stops it all)", _run),
        Command("worker", "run a stream worker (order writer, routing, execution)", _worker,
                resumes_collection=True),
        Command("api", "run the HTTP/WebSocket edge and the dashboard", _api),
        Command("projector", "run the read-model projector", _projector),
        Command("replay", "print events straight from Kafka for audits (checks seq; --verify: "
                "the hash chains)",
                _replay, _replay_arguments),
        Command("projections", "rebuild the read model without downtime, or show its lag",
                _projections, _projections_arguments),
        Command("keys", "create, list or revoke API keys (stored as HMACs in PostgreSQL)",
                _keys, _keys_arguments),
    ]


def _keys_arguments(parser: argparse.ArgumentParser) -> None:
    from oee.keys import add_arguments

    add_arguments(parser)


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from infra.services import database_url
    from oee.keys import run
    from projections.migrate import migrate

    ready = _with_services(settings)
    migrate(database_url(ready), ready.db_schema)  # the api_keys table, on a fresh database
    return run(args, ready)


def _replay_arguments(parser: argparse.ArgumentParser) -> None:
    from projections.cli import add_replay_arguments

    add_replay_arguments(parser)


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from projections.cli import replay_main

    return replay_main(_with_services(settings), args)


def _projections_arguments(parser: argparse.ArgumentParser) -> None:
    from projections.cli import add_projections_arguments

    add_projections_arguments(parser)


def _projections(args: argparse.Namespace, settings: Settings) -> int:
    from projections.cli import projections_main

    return projections_main(_with_services(settings), args)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from oee.run import run_system  # imported late: only this command needs the supervisor

    return run_system(settings)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.worker import run_worker

    run_worker(_with_services(settings))  # resumes the garbage collector once built
    return 0


def _api(args: argparse.Namespace, settings: Settings) -> int:
    from api.server import serve
    from oee.api_bootstrap import bootstrap

    ready = _with_services(settings)
    serve(bootstrap(ready), ready)
    return 0


def _projector(args: argparse.Namespace, settings: Settings) -> int:
    from projections.projector import run_projector

    run_projector(_with_services(settings))
    return 0


def _with_services(settings: Settings) -> Settings:
    """Point a single process at the configured or local services explicitly."""
    from infra.schema_registry import registry_url
    from infra.services import bootstrap_servers, database_url

    return settings.model_copy(update={"kafka_bootstrap_servers": bootstrap_servers(settings),
                                       "database_url": database_url(settings),
                                       "schema_registry_url": registry_url(settings)})


# --- entrypoint -----------------------------------------------------------------------


def build_parser(available: Sequence[Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oee",
        description="Event-sourced order execution engine. Configuration comes from environment "
        "variables (see oee/settings.py).",
    )
    parser.add_argument("--version", action="version",
                        version=f"oee {importlib.metadata.version('oee')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in available:
        command_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(command_parser)
        command_parser.set_defaults(handler=command.handler, parser=command_parser,
                                    resumes_collection=command.resumes_collection)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    startup.pause()
    try:
        return _dispatch(build_parser(commands()).parse_args(argv))
    finally:
        startup.resume()  # (for a command that returns, or fails)


def _dispatch(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from oee.settings import Settings

    try:
        settings = Settings()
        if not args.resumes_collection:
            startup.resume()
        handler: Handler = args.handler
        return handler(args, settings)
    except ValidationError as exc:
        return _fail(f"invalid configuration in the environment: {_summarise(exc)}")
    except PrerequisiteError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


def _summarise(error: ValidationError) -> str:
    """One line per bad variable, named as the user sets it (PARTITIONS, not partitions)."""
    return "; ".join(
        f"{'.'.join(map(str, item['loc'])).upper()}: {item['msg']} (got {item['input']!r})"
        for item in error.errors()
    )


def _fail(message: str) -> int:
    print(f"oee: error: {message}", file=sys.stderr)
    return EXIT_PREREQUISITE


if __name__ == "__main__":
    sys.exit(main())
