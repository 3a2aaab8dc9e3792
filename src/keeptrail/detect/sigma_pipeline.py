"""Where Sigma's field names and log sources land in Keeptrail's event model.

Sigma rules name fields the way their log source spells them (auditd's ``exe``, a web server's
``cs-uri-query``, Kubernetes' ``objectRef.resource``). Keptrail normalises every format into one
event shape (docs/event-vocabulary.md), so converting a rule is mostly renaming: this module is
that renaming, as plain tables (reviewable, testable) from which the pySigma
:class:`~sigma.processing.pipeline.ProcessingPipeline` is built.

A log source also narrows *which* events a rule looks at: ``service: sshd`` means lines sshd
wrote, which here is ``collector.parser:sshd`` (or a PAM line whose service is sshd). That filter
is ANDed in front of the converted query. A log source with no entry (Windows, macOS, cloud
audit trails) cannot be converted: nothing Keeptrail collects would match it, and saying so is
better than a rule that silently never fires.

A Sigma field left unmapped keeps its own name and the backend refuses it by name, so an
unknown field is reported rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation
from sigma.rule import SigmaLogSource

FREE_TEXT: Final = "raw"
"""Target name for message-like fields (``pam_message``): matched anywhere in the line."""


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One supported Sigma log source: how to recognise it, what it filters, its field names."""

    name: str
    product: str | None
    service: str | None
    category: str | None
    filter: str  # Keeptrail query ANDed before the rule's own query ("" for none)
    fields: dict[str, str]


_AUTH_FIELDS: Final[dict[str, str]] = {
    "pam_message": FREE_TEXT,
    "pam_user": "actor.name",
    "pam_rhost": "source.ip",
    "pam_ruser": "details.ruser",
    "pam_service": "target.system",
    "USER": "actor.effective_user",  # sudo's run-as user (USER=)
    "COMMAND": "details.command",  # sudo's COMMAND=
    "PWD": "details.pwd",
    "TTY": "details.tty",
}

_AUDITD_FIELDS: Final[dict[str, str]] = {
    "type": "details.record_types",  # any record of the event has this type
    "exe": "details.exe",
    "comm": "details.comm",
    "key": "details.key",
    "syscall": "details.syscall",
    "auid": "details.auid",
    "uid": "details.uid",
    "euid": "details.euid",
    "pid": "details.pid",
    "ses": "actor.session",
    "tty": "details.tty",
    "terminal": "details.terminal",
    "cwd": "details.cwd",
    "name": "target.resource",  # PATH name: the object of a file event
    "proctitle": "details.command",  # decoded proctitle / argv joined with spaces
    "acct": "details.acct",
    "op": "details.op",
    "exit": "details.exit",
    "addr": "source.ip",
    "hostname": "source.host",
}

_PROCESS_FIELDS: Final[dict[str, str]] = {
    "Image": "details.exe",
    "CommandLine": "details.command",
    "CurrentDirectory": "details.cwd",
    "User": "actor.name",
    "LogonId": "actor.session",
    "ProcessId": "details.pid",
}

_WEB_FIELDS: Final[dict[str, str]] = {
    "c-ip": "source.ip",
    "cs-method": "details.method",
    "cs-uri-stem": "details.path",
    "cs-uri-query": "details.query",
    "sc-status": "details.status",
    "cs-user-agent": "details.user_agent",
    "cs-referer": "details.referrer",
    "cs-referrer": "details.referrer",
    "cs-username": "actor.name",
    "cs-host": "details.vhost",
    "cs-version": "details.protocol",
    "sc-bytes": "details.bytes",
}

_K8S_FIELDS: Final[dict[str, str]] = {
    "verb": "details.verb",
    "objectRef.resource": "details.resource",
    "objectRef.subresource": "details.subresource",
    "objectRef.namespace": "details.namespace",
    "objectRef.name": "details.name",
    "objectRef.apiGroup": "details.api_group",
    "objectRef.apiVersion": "details.api_version",
    "user.username": "actor.name",
    "user.groups": "details.groups",
    "impersonatedUser.username": "actor.effective_user",
    "sourceIPs": "source.ip",
    "userAgent": "details.user_agent",
    "responseStatus.code": "details.status",
    "requestURI": "details.request_uri",
    "stage": "details.stage",
    "level": "details.level",
    "auditID": "details.audit_id",
}

COMMON_FIELDS: Final[dict[str, str]] = {
    "host": "target.host",
    "hostname": "target.host",
    "Hostname": "target.host",
    "ComputerName": "target.host",
    "user": "actor.name",
    "user_name": "actor.name",
    "username": "actor.name",
    "client_ip": "source.ip",
    "src_ip": "source.ip",
    "source_ip": "source.ip",
    "SourceIp": "source.ip",
    "src_port": "source.port",
    "SourcePort": "source.port",
    "deviceProcessName": "collector.parser",  # the program that wrote the line
    "message": FREE_TEXT,
    "Message": FREE_TEXT,
    "msg": FREE_TEXT,
}
"""Names several sources share (normalised SIEM spellings); tried after a source's own table."""

_PARSERS: Final = ("sshd", "pam", "sudo", "su", "shadow", "logind")

SOURCES: Final[tuple[SourceSpec, ...]] = (
    SourceSpec("linux/auditd", "linux", "auditd", None, "collector.parser:auditd", _AUDITD_FIELDS),
    SourceSpec(
        "linux/sshd",
        "linux",
        "sshd",
        None,
        "(collector.parser:sshd OR target.system:sshd)",
        _AUTH_FIELDS,
    ),
    SourceSpec(
        "linux/sudo",
        "linux",
        "sudo",
        None,
        "(collector.parser:sudo OR target.system:sudo)",
        _AUTH_FIELDS,
    ),
    SourceSpec(
        "linux/auth",
        "linux",
        "auth",
        None,
        "(" + " OR ".join(f"collector.parser:{p}" for p in _PARSERS) + ")",
        _AUTH_FIELDS,
    ),
    SourceSpec("linux/syslog", "linux", "syslog", None, "", _AUTH_FIELDS),
    SourceSpec(
        "linux/process_creation",
        "linux",
        None,
        "process_creation",
        "action:process.exec",
        _PROCESS_FIELDS,
    ),
    SourceSpec("linux", "linux", None, None, "", _AUTH_FIELDS),
    SourceSpec("webserver", None, None, "webserver", "action:http.request", _WEB_FIELDS),
    SourceSpec("kubernetes/audit", "kubernetes", "audit", None, "category:kubernetes", _K8S_FIELDS),
    SourceSpec(
        "kubernetes/audit", "kubernetes", "audit", "application", "category:kubernetes", _K8S_FIELDS
    ),
)
"""Supported log sources, most specific first (the first that matches a rule applies)."""


def source_for(logsource: SigmaLogSource) -> SourceSpec | None:
    """The supported source a rule's ``logsource`` is, or None (then it cannot be converted).

    Every attribute a spec names must be equal, and the rule may not name one the spec leaves
    open (``product: linux, service: clamav`` is not plain ``linux``: its lines are ClamAV's).
    """
    for spec in SOURCES:
        if (
            _same(spec.product, logsource.product)
            and _same(spec.service, logsource.service)
            and _same(spec.category, logsource.category)
        ):
            return spec
    return None


def _same(wanted: str | None, actual: str | None) -> bool:
    return (wanted or None) == (actual.lower() if actual else None)


def map_field(name: str, spec: SourceSpec | None) -> str | None:
    """Our field for a Sigma field name under a source, or None when there is none."""
    if spec is not None and name in spec.fields:
        return spec.fields[name]
    return COMMON_FIELDS.get(name)


def describe_source(logsource: SigmaLogSource) -> str:
    """``product=linux service=clamav`` — for messages."""
    parts = [
        f"{key}={value}"
        for key, value in (
            ("product", logsource.product),
            ("service", logsource.service),
            ("category", logsource.category),
        )
        if value
    ]
    return " ".join(parts) or "(empty)"


def build_pipeline(spec: SourceSpec) -> ProcessingPipeline:
    """The pySigma pipeline for rules of one source: its field names, then the common ones.

    One pipeline per source rather than one with log-source conditions: pySigma's
    ``LogsourceCondition`` ignores attributes it does not name, so a plain ``product: linux``
    item would also rename the fields of auditd rules.
    """
    return ProcessingPipeline(
        name=f"keeptrail {spec.name}",
        priority=20,
        items=[
            ProcessingItem(
                identifier=f"keeptrail_{spec.name.replace('/', '_')}_fields",
                transformation=FieldMappingTransformation(_mapping(spec.fields)),
            ),
            ProcessingItem(
                identifier="keeptrail_common_fields",
                transformation=FieldMappingTransformation(_mapping(COMMON_FIELDS)),
            ),
        ],
    )


def _mapping(table: dict[str, str]) -> dict[str | None, str | list[str]]:
    out: dict[str | None, str | list[str]] = {}
    out.update(table)
    return out
