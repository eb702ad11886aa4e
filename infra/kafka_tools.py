"""Apache Kafka's standard command-line tools, run from the launcher's jars.

Consumes a Settings (Kafka version, jar cache, where Kafka is) and a tool's arguments;
produces the tool's own `java -cp 'libs/*' MAIN_CLASS ARGS` command line, pointed at the
configured cluster (the local broker by default) unless the arguments name a bootstrap server.
The jars are those of `infra/pom.xml` (the broker and `kafka-tools`), resolved once by Maven.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from infra.errors import PrerequisiteError

# `oee kafka NAME` -> the tool's main class (the same classes Kafka's bin/*.sh scripts run).
TOOLS: Final = {
    "topics": "org.apache.kafka.tools.TopicCommand",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
}
BOOTSTRAP_OPTION = "--bootstrap-server"

_LOG4J2 = """\
# Written by infra/kafka_tools.py: the tools' warnings to stderr, so stdout stays their output.
status = error
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = err
"""


def require_java() -> None:
    if shutil.which("java") is None:
        raise PrerequisiteError(
            "`java` is not on PATH and Kafka's tools need it: install Java 17+ "
            "(apt-get install openjdk-17-jre-headless)"
        )


def names_bootstrap(args: Sequence[str]) -> bool:
    """Do the tool's own arguments say which cluster (`--bootstrap-server[=]...`)?"""
    return any(arg == BOOTSTRAP_OPTION or arg.startswith(f"{BOOTSTRAP_OPTION}=") for arg in args)


def needs_cluster(args: Sequence[str]) -> bool:
    """Will the tool connect to the default cluster (not another one, not just print help)?"""
    return not names_bootstrap(args) and not {"--help", "--version"} & set(args)


def tool_argv(libs: Path, tool: str, args: Sequence[str], bootstrap: str) -> list[str]:
    """The command line running `tool` from the jars in `libs` with `args` against `bootstrap`."""
    log_config = libs.parent / "tools-log4j2.properties"
    if not log_config.exists():
        log_config.write_text(_LOG4J2)
    target = [] if names_bootstrap(args) else [BOOTSTRAP_OPTION, bootstrap]
    return ["java", "-Xmx512m", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log_config}",
            "-cp", f"{libs}/*", TOOLS[tool], *target, *args]
