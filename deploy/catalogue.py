"""The event catalogue (docs/events.md), generated from the contracts and what the services declare.

    python -m deploy.catalogue                              # print the catalogue
    python -m deploy.catalogue --output docs/events.md      # regenerate the checked-in page
    python -m deploy.catalogue --check                      # exit 1 if the checked-in page is stale

Payloads, fields, types and enumerations come from ``shared/contracts.py`` (a field's
description is its ``Field(description=...)``, else the comment beside or above it in the
source, else its line in ``FIELD_NOTES`` there: the contracts stay the one place to explain a
field). Which topic carries an event
type, who produces it and who consumes it come from each service's app as built (nothing
connects), like ``deploy.kafka_acls``: the topics a service publishes to and the event types
its consumer routes per topic. The municipalities' public topic comes from that service's own
contract. A unit test fails when the checked-in page is not what this produces.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from services.municipalities import contract as municipal
from shared import contracts
from shared.cli import SERVICES
from shared.commandline import emit_generated

REPO = Path(__file__).resolve().parents[1]
CHECKED_IN = REPO / "docs" / "events.md"


@dataclass(frozen=True)
class Declared:
    service: str
    produces: tuple[str, ...]
    consumes: dict[str, tuple[str, ...]]  # topic -> event types handled


def declared(service: str) -> Declared:
    """What the service publishes to and which event types it handles per topic, from its app."""
    app = importlib.import_module(f"services.{service}.api").create_app()
    consumer = app.state.runtime.consumer
    return Declared(service, (*app.state.produces, *app.state.produces_patterns), dict(consumer.event_types))


@dataclass(frozen=True)
class Event:
    name: str
    payload: type[BaseModel]
    topic: str
    producer: str
    consumers: tuple[str, ...]


def events(services: list[Declared]) -> list[Event]:
    """Every event type of the contracts with its topic (where its consumers read it), the
    service producing that topic, and its consumers. An event type no service consumes has no
    known topic: that is an error here, since the contracts should not carry dead types."""
    producers = {topic: d.service for d in services for topic in d.produces}
    found = []
    for event_type, payload in contracts.PAYLOADS.items():
        topics = {topic for d in services for topic, handled in d.consumes.items() if event_type in handled}
        if len(topics) != 1:
            raise SystemExit(
                f"event type {event_type} is consumed from {sorted(topics) or 'no topic'}: expected exactly one topic"
            )
        topic = topics.pop()
        consumers = tuple(d.service for d in services if event_type in d.consumes.get(topic, ()))
        found.append(Event(str(event_type), payload, topic, producers.get(topic, "?"), consumers))
    return found


# --- types and descriptions -----------------------------------------------------------


# A payload model is described in its event's section: links to it go there.
_EVENT_OF: dict[type[BaseModel], str] = {payload: str(event) for event, payload in contracts.PAYLOADS.items()}


def anchor(event_type: str) -> str:
    """GitHub's anchor of an event type's heading (it drops the dots)."""
    return event_type.replace(".", "").lower()


def type_name(annotation: object) -> str:
    """A field's type as a reader writes it: ``list[Need]``, ``str | None``, links to models and enums."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    if isinstance(annotation, typing.TypeVar):
        return "the payload"
    if isinstance(annotation, type) and (event := _EVENT_OF.get(annotation)):
        return f"[`{annotation.__name__}`](#{anchor(event)})"
    if isinstance(annotation, type) and issubclass(annotation, (BaseModel, Enum)):
        return f"[`{annotation.__name__}`](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def referenced(model: type[BaseModel]) -> list[type]:
    """The models and enums a model's fields refer to, depth first, each once."""
    seen: list[type] = []

    def walk(annotation: object) -> None:
        for arg in (annotation, *typing.get_args(annotation)):
            if isinstance(arg, type) and issubclass(arg, (BaseModel, Enum)) and arg not in seen:
                seen.append(arg)
                if issubclass(arg, BaseModel):
                    for field in arg.model_fields.values():
                        walk(field.annotation)
            elif typing.get_args(arg) and arg is not annotation:
                walk(arg)

    for field in model.model_fields.values():
        walk(field.annotation)
    return seen


def field_comments(model: type) -> dict[str, str]:
    """The comment beside each field in the source, else the comment lines just above it."""
    try:
        source = textwrap.dedent(inspect.getsource(model))
    except (OSError, TypeError):
        return {}
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    lines = source.splitlines()
    found = {}
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        line = node.lineno
        if line in comments and not lines[line - 1].lstrip().startswith("#"):
            found[node.target.id] = comments[line]
            continue
        above: list[str] = []
        while line - 1 in comments and lines[line - 2].lstrip().startswith("#"):
            line -= 1
            above.insert(0, comments[line])
        if above:
            found[node.target.id] = " ".join(above)
    return found


def docstring(obj: type) -> str:
    doc = inspect.getdoc(obj)
    inherited = {inspect.getdoc(base) for base in (BaseModel, Enum, str, int)}
    return " ".join(doc.split()) if doc and doc not in inherited and obj.__doc__ else ""


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def default(field: FieldInfo) -> str:
    """``yes`` for a required field, else ``no`` and the value it gets when left out."""
    if field.is_required():
        return "yes"
    if field.default_factory is not None:
        return "no (generated)"
    value = field.default
    shown = "empty" if isinstance(value, BaseModel) else f"`{json.dumps(to_jsonable_python(value))}`"
    return f"no, {shown}"


def description(model: type[BaseModel], name: str, field: FieldInfo, comments: dict[str, str]) -> str:
    notes = contracts.FIELD_NOTES if model.__module__ == contracts.__name__ else {}
    return (
        field.description
        or comments.get(name)
        or notes.get(f"{model.__name__}.{name}")
        or notes.get(name)
        or examples(field)
    )


def examples(field: FieldInfo) -> str:
    return f"e.g. {', '.join(f'`{e}`' for e in field.examples)}" if field.examples else ""


def fields_table(model: type[BaseModel]) -> list[str]:
    comments = field_comments(model)
    rows = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        text = description(model, name, field, comments)
        rows.append(f"| `{name}` | {type_name(field.annotation)} | {default(field)} | {cell(text)} |")
    return rows


# --- the page -------------------------------------------------------------------------

HEADER = """\
# Event catalogue

<!-- Generated by `python -m deploy.catalogue --output docs/events.md` from shared/contracts.py
and the services' subscriptions: do not edit by hand (a unit test checks it is current). -->

Every event travels in an envelope on a Kafka topic. Each producing service owns one topic
(its name ends in the topic version, `.v1`; a change that would break a consumer gets a new
topic); the event type says what happened. Contracts are additive: consumers ignore fields
and event types they do not know, so a producer may add an optional field first. Every topic
has a dead-letter twin `<topic>.dlq` (see the README's *Reliability by construction*).
"""


def render(services: list[Declared]) -> str:
    found = events(services)
    out = [
        HEADER,
        "## Envelope",
        "",
        docstring(contracts.Envelope),
        "",
        (
            f"`version` is the envelope version: {contracts.SEALED_VERSION} when the payload's signal travels "
            "sealed (encrypted under the caregiver's data key, `shared/sealing.py`), 1 for plaintext events "
            "of producers from before; every consumer reads both."
        ),
        "",
        *fields_table(contracts.Envelope),
        "",
        "## Topics",
        "",
        "| topic | producer | event types | consumed by |",
        "|---|---|---|---|",
    ]
    for topic in contracts.Topics.ALL:
        here = [e for e in found if e.topic == topic]
        producer = next((d.service for d in services if topic in d.produces), "?")
        names = ", ".join(f"[`{e.name}`](#{anchor(e.name)})" for e in here)
        consumers = ", ".join(s.service for s in services if topic in s.consumes)
        out.append(f"| `{topic}` | {producer} | {names} | {consumers} |")
    out.append(
        f"| `{municipal.TOPIC_PATTERN}` | municipalities | [`{municipal.EVENT_TYPE}`]"
        f"(#{anchor(municipal.EVENT_TYPE)}) | the municipality's own systems (also as SSE and webhooks) |"
    )
    out += ["", "## Event types", ""]
    shown: list[type] = []
    for event in found:
        out += event_section(event.name, event.payload, event.topic, event.producer, ", ".join(event.consumers))
        shown += [t for t in referenced(event.payload) if t not in shown and t not in _EVENT_OF]
    out += event_section(
        municipal.EVENT_TYPE,
        municipal.ReleasedGroup,
        municipal.TOPIC_PATTERN,
        "municipalities",
        "outside the pipeline",
        envelope=municipal.MunicipalEnvelope,
    )
    out += ["## Types", "", "Models and vocabularies the payloads use.", ""]
    for kind in shown:
        out += type_section(kind)
    return "\n".join(out).rstrip() + "\n"


def event_section(
    event_type: str, payload: type[BaseModel], topic: str, producer: str, consumers: str, envelope: type | None = None
) -> list[str]:
    sealed = any(t in (contracts.SignalReceived, contracts.SealedSignal) for t in [payload, *referenced(payload)])
    version = f"{contracts.SEALED_VERSION} (its signal travels sealed; 1 from older producers)" if sealed else "1"
    lines = [
        f"### {event_type}",
        "",
        docstring(payload),
        "",
        f"- topic: `{topic}`; producer: {producer}; consumers: {consumers}",
        f"- payload: `{payload.__name__}`; envelope version: {version}",
    ]
    if envelope is not None:
        lines.append(f"- envelope: {docstring(envelope)}")
    return [*lines, "", *fields_table(payload), ""]


def type_section(kind: type[BaseModel | Enum]) -> list[str]:
    lines = [f"### {kind.__name__}", ""]
    if doc := docstring(kind):
        lines += [doc, ""]
    if issubclass(kind, BaseModel):
        return [*lines, *fields_table(kind), ""]
    return [*lines, ", ".join(f"`{member.value}`" for member in kind), ""]


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(
        prog="python -m deploy.catalogue",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    cli.add_argument("--output", type=Path, help="write the catalogue to this file instead of printing it")
    cli.add_argument(
        "--check", action="store_true", help=f"compare with {CHECKED_IN.relative_to(REPO)}; exit 1 if stale"
    )
    args = cli.parse_args(argv)
    text = render([declared(service) for service in SERVICES])
    return emit_generated(text, CHECKED_IN, REPO, "deploy.catalogue", output=args.output, check=args.check)


if __name__ == "__main__":
    raise SystemExit(main())
