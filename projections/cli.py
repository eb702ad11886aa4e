"""The projection commands of the `oee` CLI: `oee replay ...` and `oee projections ...`.

Consumes parsed arguments and the one Settings; produces text on stdout (events, status,
a summary), a progress bar on stderr, and an exit code: 0 fine, 1 the replay found a gap or
another failure (or the rebuild failed), 2 bad arguments or another rebuild is running.
`oee/cli.py` registers them with `add_*_arguments` and calls `*_main(settings, args)`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

import orjson
import psycopg

from infra.schema_registry import reading_codec, registered_checkpoint_reader
from infra.services import bootstrap_servers, database_url
from oee.settings import Settings
from projections.audit import SeqAudit
from projections.kafka_offsets import KafkaOffsets
from projections.progress import Progress, RateMeter, render_bar
from projections.rebuild import CATCH_UP_LAG, RebuildFailed, RebuildOptions, RebuildRunning, rebuild
from projections.replay import CheckpointCheck, Replayed, Replayer, Selection
from projections.status import projection_lag, shadow_lag
from schemas.chain import ChainCheck
from schemas.codec import Codec

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2

# --- oee replay ------------------------------------------------------------------------------


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--order", metavar="ID", help="every event of one order")
    what.add_argument("--from", dest="start", metavar="ISO", type=instant,
                      help="events recorded at or after this time (ISO 8601; UTC if no offset)")
    what.add_argument("--all", action="store_true", help="every event")
    parser.add_argument("--to", dest="end", metavar="ISO", type=instant,
                        help="with --from: events recorded before this time")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--verify", action="store_true",
                        help="recompute every order's hash chain (with --order or --all) and "
                             "report the broken links instead of listing the events")


def replay_main(settings: Settings, args: argparse.Namespace) -> int:
    if args.end is not None and args.start is None:
        print("oee replay: --to needs --from", file=sys.stderr)
        return EXIT_USAGE
    if args.start is not None and args.end is not None and args.end <= args.start:
        print("oee replay: --to must be after --from", file=sys.stderr)
        return EXIT_USAGE
    if args.verify and args.start is not None:
        print("oee replay: --verify needs whole histories: --order or --all", file=sys.stderr)
        return EXIT_USAGE
    selection = Selection(order_id=args.order, start=args.start, end=args.end)
    if args.verify:
        return asyncio.run(_verify(settings, selection, args.format, sys.stdout))
    return asyncio.run(_replay(settings, selection, args.format, sys.stdout))


async def _verify(settings: Settings, selection: Selection, fmt: str, out: IO[str]) -> int:
    """Every selected order's chain recomputed from Kafka; 1 if a link or the seqs broke."""
    codec = reading_codec(settings)
    audit = SeqAudit(from_start=True)
    chain = ChainCheck()
    # A checkpoint's root covers every order of its partition: only a whole log checks it.
    pins = CheckpointCheck(read=registered_checkpoint_reader(settings).read)
    checkpoints = None if selection.order_id else (settings.topics.checkpoints, pins)
    meter = ReplayMeter(settings.topics.events, _Bar(sys.stderr).show)
    replayer = Replayer(bootstrap_servers(settings), settings.topics.events, codec, meter.read)
    async for _ in replayer.replay(selection, audit, chain, checkpoints):
        pass
    meter.finish()
    _report_chain(chain, pins if checkpoints else None, fmt, out)
    _report(audit, fmt, out)
    return EXIT_FOUND if chain.broken or pins.mismatched or audit.failed else EXIT_OK


def _report_chain(chain: ChainCheck, pins: CheckpointCheck | None, fmt: str,
                  out: IO[str]) -> None:
    first = chain.broken[0] if chain.broken else None
    summary: dict[str, Any] = {
        "events": chain.events, "orders": len(chain.orders), "chained": len(chain.heads),
        "unchained": chain.unchained, "duplicates": chain.duplicates,
        "broken": len(chain.broken), "verified": first is None and not (
            pins and pins.mismatched),
        "firstBroken": None if first is None else first.as_json()}
    if pins is not None:
        summary["checkpoints"] = {"checked": pins.checked, "mismatched": len(pins.mismatched),
                                  "stale": pins.stale, "unchecked": pins.unchecked,
                                  "unreadable": pins.unreadable}
    mismatched = pins.mismatched if pins else []
    if fmt == "json":
        for link in chain.broken:
            print(orjson.dumps({"broken": link.as_json()}).decode(), file=out)
        for pin in mismatched:
            print(orjson.dumps({"checkpointMismatch": pin}).decode(), file=out)
        print(orjson.dumps({"chain": summary}).decode(), file=out)
        return
    for link in chain.broken:
        print(f"BROKEN: {link}", file=out)
    for pin in mismatched:
        print(f"CHECKPOINT MISMATCH: {pin['topic']}[{pin['partition']}]@{pin['offset']} pins "
              f"root {pin['root']} of {pin['orders']} orders at offset {pin['coveredOffset']}; "
              f"the log gives {pin['recomputed']} of {pin['recomputedOrders']}", file=out)
    verdict = "verified" if summary["verified"] else (
        f"BROKEN, first at {first}" if first else "a checkpoint does not match")
    pinned = "" if pins is None else (
        f"; {pins.checked} checkpoints checked, {len(pins.mismatched)} mismatched")
    print(f"chain: {chain.events} events of {len(chain.orders)} orders checked "
          f"({chain.unchained} written before the chain, {chain.duplicates} duplicates "
          f"skipped); {len(chain.broken)} broken{pinned}: {verdict}", file=out)


async def _replay(settings: Settings, selection: Selection, fmt: str, out: IO[str]) -> int:
    codec = reading_codec(settings)
    audit = SeqAudit(from_start=selection.from_start)
    meter = ReplayMeter(settings.topics.events, _Bar(sys.stderr).show)
    replayer = Replayer(bootstrap_servers(settings), settings.topics.events, codec, meter.read)
    write = _json_line if fmt == "json" else _table_line
    if fmt == "table":
        print(f"{'TOPIC':24} {'PARTITION':>9} {'OFFSET':>9}  {'RECORDED':29}  {'ORDER':36} "
              f"{'SEQ':>4}  TYPE", file=out)
    async for replayed in replayer.replay(selection, audit):
        write(replayed, codec, out)
    meter.finish()
    _report(audit, fmt, out)
    return EXIT_FOUND if audit.failed else EXIT_OK


class ReplayMeter:
    """Turns the replayer's (records behind, records to read) into `Progress` for the bar:
    records/s over the last seconds and the ETA of the rest."""

    def __init__(self, topic: str, show: Callable[[Progress], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._topic, self._show, self._clock = topic, show, clock
        self._rate, self._started = RateMeter(), time.time()
        self.last = Progress("replaying", topic, 0, 0, 0.0, self._started)

    def read(self, read: int, to_read: int) -> None:
        rate = self._rate.add(read, self._clock())
        self.last = Progress("replaying", self._topic, read, to_read, rate, self._started)
        self._show(self.last)

    def finish(self) -> None:
        self.last = dataclasses.replace(self.last, phase="done", projected=self.last.end,
                                        finished_at=time.time())
        self._show(self.last)


def _table_line(replayed: Replayed, codec: Codec, out: IO[str]) -> None:
    event, at = replayed.event, replayed.at
    print(f"{at.topic:24} {at.partition:>9} {at.offset:>9}  {_iso(replayed.timestamp_ms):29}  "
          f"{event.order_id:36} {event.seq:>4}  {type(event).__name__}", file=out)


def _json_line(replayed: Replayed, codec: Codec, out: IO[str]) -> None:
    event, at = replayed.event, replayed.at
    line = {"topic": at.topic, "partition": at.partition, "offset": at.offset,
            "timestamp": _iso(replayed.timestamp_ms), "orderId": event.order_id,
            "seq": event.seq, "type": type(event).__name__, "eventId": event.event_id,
            "occurredAt": event.occurred_at.isoformat(), "data": codec.event_to_json(event)}
    print(orjson.dumps(line).decode(), file=out)


def _report(audit: SeqAudit, fmt: str, out: IO[str]) -> None:
    failures = sum(finding.is_failure for finding in audit.findings)
    summary = {"events": audit.events, "orders": audit.orders,
               "findings": len(audit.findings), "failures": failures}
    if fmt == "json":
        for finding in audit.findings:
            print(orjson.dumps({"finding": finding.as_json()}).decode(), file=out)
        print(orjson.dumps({"summary": summary}).decode(), file=out)
        return
    for finding in audit.findings:
        print(f"{finding.kind.upper()}: order {finding.order_id} seq {finding.seq} at "
              f"{finding.at}: {finding.detail}", file=out)
    verdict = "FAILED" if failures else "ok"
    print(f"{audit.events} events of {audit.orders} orders; {len(audit.findings)} findings, "
          f"{failures} failures: {verdict}", file=out)


def instant(text: str) -> datetime:
    """An ISO 8601 date or time; one without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds")


# --- oee projections rebuild | status ---------------------------------------------------------


def add_projections_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("rebuild", "status"))
    parser.add_argument("--workers", type=int, default=None,
                        help="rebuild: shadow worker processes (default: one per CPU)")
    parser.add_argument("--catch-up-lag", type=int, default=CATCH_UP_LAG,
                        help="rebuild: swap once this few events are left to catch up")


def projections_main(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "status":
        return asyncio.run(_status(settings))
    options = RebuildOptions(workers=args.workers, catch_up_lag=args.catch_up_lag)
    bar = _Bar(sys.stderr)
    try:
        final = asyncio.run(rebuild(settings, options, bar.show))
    except RebuildRunning as error:
        print(f"oee projections: {error}", file=sys.stderr)
        return EXIT_USAGE
    except RebuildFailed as error:
        bar.done()
        print(f"oee projections: rebuild failed, live read model untouched: {error}",
              file=sys.stderr)
        return EXIT_FOUND
    bar.done()
    took = (final.finished_at or time.time()) - final.started_at
    print(f"rebuilt {final.schema}: {final.projected:,} events in {took:.1f}s "
          f"({final.projected / max(took, 1e-9):,.0f} events/s)")
    return EXIT_OK


async def _status(settings: Settings) -> int:
    async with await psycopg.AsyncConnection.connect(database_url(settings),
                                                     autocommit=True) as conn, \
            KafkaOffsets(bootstrap_servers(settings)) as kafka:
        live = await projection_lag(conn, kafka, settings)
        shadow = await shadow_lag(conn, kafka, settings)
    body: dict[str, Any] = {"live": live.as_json(),
                            "rebuild": shadow.as_json() if shadow else None}
    print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    return EXIT_OK


class _Bar:
    """A progress bar redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._tty = out.isatty()
        self._last_line = 0.0
        self._last_phase = ""

    def show(self, progress: Progress) -> None:
        line = render_bar(progress)
        if self._tty:
            self._out.write("\r" + line + "\x1b[K")
            self._out.flush()
            return
        now = time.monotonic()
        if progress.phase != self._last_phase or now - self._last_line >= 2:
            self._last_phase, self._last_line = progress.phase, now
            print(line, file=self._out, flush=True)

    def done(self) -> None:
        if self._tty:
            self._out.write("\n")
            self._out.flush()
