"""Generate the API reference, docs/api/<version>.md, from the protos and their comments.

    python scripts/gen_reference.py [OUT_DIR]     (default: the repository's docs/api/)

`buf build` compiles protos/ into an image that keeps every comment (`SourceCodeInfo`); this
reads it and writes one Markdown file per API package (hustle.v1 -> v1.md): every service, RPC,
message, field, enum and enum value with its comment, and for each RPC its access rule,
rate-limit group, idempotency and the HX codes it can return, with their meaning.

Where the facts come from, so that the reference says what the server does:
- the method options are read through the extensions of the generated `hustle` package (run
  scripts/gen_protos.py first: `make protos` does); a rule a package leaves unstated is
  defaulted as server/policy.py does (a test checks the two agree for every v1 procedure);
- each HX code's gRPC status and meaning come from server/errors.py's catalogue, and each
  rate-limit group's per-minute limit from server/config.py's defaults.

The output depends on nothing but its inputs (no dates, a fixed order), so a test can tell a
stale reference from a fresh one. The generator refuses an element without a comment.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from google.protobuf import descriptor_pb2, descriptor_pool, unknown_fields  # noqa: E402
from google.protobuf.descriptor import FieldDescriptor  # noqa: E402

from server.config import Settings  # noqa: E402
from server.errors import CATALOGUE  # noqa: E402

BUF = ROOT / "node_modules" / ".bin" / "buf"
PACKAGES = {"hustle.v1": "v1.md", "hustle.v2": "v2.md"}
D = descriptor_pb2
F = D.FieldDescriptorProto
NO_SIDE_EFFECTS = D.MethodOptions.NO_SIDE_EFFECTS
IDEMPOTENT = D.MethodOptions.IDEMPOTENT
PROTOBUF_DOCS = "https://protobuf.dev/reference/protobuf/google.protobuf/"

# SourceCodeInfo paths: field numbers of the descriptor messages.
FILE_PACKAGE, FILE_MESSAGE, FILE_ENUM, FILE_SERVICE, FILE_EXTENSION = 2, 4, 5, 6, 7
MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM = 2, 3, 4
ENUM_VALUE, SERVICE_METHOD = 2, 2

SCALARS = {
    F.TYPE_DOUBLE: "double",
    F.TYPE_FLOAT: "float",
    F.TYPE_INT64: "int64",
    F.TYPE_UINT64: "uint64",
    F.TYPE_INT32: "int32",
    F.TYPE_FIXED64: "fixed64",
    F.TYPE_FIXED32: "fixed32",
    F.TYPE_BOOL: "bool",
    F.TYPE_STRING: "string",
    F.TYPE_BYTES: "bytes",
    F.TYPE_UINT32: "uint32",
    F.TYPE_SFIXED32: "sfixed32",
    F.TYPE_SFIXED64: "sfixed64",
    F.TYPE_SINT32: "sint32",
    F.TYPE_SINT64: "sint64",
}
ACCESS = {
    "PUBLIC": "public: anyone, signed in or not",
    "USER": "user: a signed-in user (`authorization: Bearer <token>`)",
    "ADMIN": "admin: a signed-in admin",
}
COUNTED_BY = {
    "AUTH": "by client IP and by account",
    "READ": "by user",
    "WRITE": "by user",
    "ADMIN": "by user",
    "UPLOAD": "by user",
    "MESSAGE": "by user (and by the database: per hour and thread, per day)",
}


class ContractError(Exception):
    """The protos cannot be documented as they are (a missing comment, an unknown code)."""


@dataclass(frozen=True, slots=True)
class Rules:
    """An RPC's policy as the server applies it (see server/policy.py)."""

    access: str  # PUBLIC, USER or ADMIN
    group: str  # AUTH, READ, WRITE, ADMIN or UPLOAD
    fail_closed: bool
    idempotency: str  # read, request_id, idempotency_key, idempotent or none
    errors: tuple[str, ...]


@dataclass(slots=True)
class Doc:
    """What one package's reference is made of, in the order it is written."""

    package: str
    intro: list[str] = field(default_factory=list)
    index: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    enums: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    codes: set[str] = field(default_factory=set)


def build_image(out: Path) -> D.FileDescriptorSet:
    """The protos compiled by buf, comments included (a buf image is a FileDescriptorSet)."""
    if not BUF.exists():
        raise SystemExit(f"{BUF} is missing: run `npm ci` (make protos does)")
    subprocess.run([str(BUF), "build", "-o", str(out)], cwd=ROOT, check=True)
    # The options' extensions must be registered before the image is parsed, or they stay
    # unknown fields (which `Writer.rules` refuses).
    for package in PACKAGES:
        importlib.import_module(f"{package}.options_pb2")
    return D.FileDescriptorSet.FromString(out.read_bytes())


def comments(files: Iterable[D.FileDescriptorProto]) -> dict[tuple[str, tuple[int, ...]], str]:
    """(file name, SourceCodeInfo path) -> the leading comment there, as written."""
    found = {}
    for file in files:
        for location in file.source_code_info.location:
            if location.leading_comments:
                found[file.name, tuple(location.path)] = location.leading_comments
    return found


def lines_of(comment: str) -> list[str]:
    """A comment's lines without the space after `//`, and without blank ends."""
    lines = [line[1:] if line.startswith(" ") else line for line in comment.rstrip().split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    return [line.rstrip() for line in lines]


def cell(comment: str) -> str:
    """A comment as one table cell: lines joined, paragraphs kept apart by <br>."""
    paragraphs, current = [], []
    for line in lines_of(comment):
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "<br>".join(paragraphs).replace("|", "\\|")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def first_sentence(comment: str) -> str:
    text = cell(comment).split("<br>")[0]
    match = re.match(r"(.+?(?<!e\.g)\.)(\s|$)", text)
    return match.group(1) if match else text


class Writer:
    def __init__(self, package: str, image: D.FileDescriptorSet) -> None:
        self.package = package
        self.files = sorted((f for f in image.file if f.package == package), key=lambda f: f.name)
        if not self.files:
            raise ContractError(f"no files of package {package}")
        self.comments = comments(self.files)
        self.pool = descriptor_pool.Default()
        self.extensions = self._extensions()
        self.doc = Doc(package)

    # --- reading ---------------------------------------------------------------------------

    def _extensions(self) -> dict[str, FieldDescriptor]:
        """The package's method options, as registered by its generated options module."""
        found = {}
        for name in (
            "access",
            "rate_limit_group",
            "rate_limit_fail_closed",
            "idempotency",
            "idempotency_key",
            "errors",
        ):
            try:
                found[name] = self.pool.FindExtensionByName(f"{self.package}.{name}")
            except KeyError:
                continue
        return found

    def comment(self, file: D.FileDescriptorProto, path: Sequence[int], what: str) -> str:
        text = self.comments.get((file.name, tuple(path)))
        if not text or not text.strip():
            raise ContractError(f"{file.name}: {what} has no comment")
        return text

    def option(self, options: D.MethodOptions, name: str) -> object:
        extension = self.extensions.get(name)
        if extension is None:
            return None
        return options.Extensions[extension]

    def enum_name(self, extension: str, number: object) -> str:
        """The short name of an option's enum value: ACCESS_USER -> USER."""
        enum = self.extensions[extension].enum_type
        assert enum is not None
        value = enum.values_by_number[int(number)]
        return value.name.removeprefix(enum.values[0].name.removesuffix("UNSPECIFIED"))

    def rules(self, method: D.MethodDescriptorProto) -> Rules:
        """The method's policy, defaulted as server/policy.py defaults it."""
        options = method.options
        if len(unknown_fields.UnknownFieldSet(options)):
            raise ContractError(f"{method.name}: options that hustle/ does not know (make protos)")
        access = self.enum_name("access", self.option(options, "access"))
        if access == "UNSPECIFIED":
            access = "USER"
        group = self.enum_name("rate_limit_group", self.option(options, "rate_limit_group"))
        if group == "UNSPECIFIED":
            if access == "ADMIN":
                group = "ADMIN"
            elif options.idempotency_level == NO_SIDE_EFFECTS:
                group = "READ"
            else:
                group = "WRITE"
        fail_closed = bool(self.option(options, "rate_limit_fail_closed")) or group == "ADMIN"
        if options.idempotency_level == NO_SIDE_EFFECTS:
            idempotency = "read"
        elif self.option(options, "idempotency_key"):
            idempotency = "idempotency_key"
        elif (
            "idempotency" in self.extensions
            and self.enum_name("idempotency", self.option(options, "idempotency")) == "REQUEST_ID"
        ):
            idempotency = "request_id"
        elif options.idempotency_level == IDEMPOTENT:
            idempotency = "idempotent"
        else:
            idempotency = "none"
        errors = tuple(str(code) for code in self.option(options, "errors") or ())
        unknown = [code for code in errors if code not in CATALOGUE]
        if unknown:
            raise ContractError(f"{method.name}: unknown HX codes {unknown}")
        return Rules(access, group, fail_closed, idempotency, tuple(sorted(set(errors))))

    # --- writing ---------------------------------------------------------------------------

    def type_of(self, f: D.FieldDescriptorProto, messages: dict[str, D.DescriptorProto]) -> str:
        if f.type in (F.TYPE_MESSAGE, F.TYPE_ENUM):
            entry = messages.get(f.type_name)
            if entry is not None and entry.options.map_entry:
                key, value = entry.field
                return f"map<{self.type_of(key, messages)}, {self.type_of(value, messages)}>"
            name = f.type_name.lstrip(".")
            if name.startswith(self.package + "."):
                short = name.removeprefix(self.package + ".")
                shown = f"[{short}](#{slug(short)})"
            elif name.startswith("google.protobuf."):
                short = name.removeprefix("google.protobuf.")
                shown = f"[{name}]({PROTOBUF_DOCS}#{short.lower()})"
            else:
                shown = f"`{name}`"
        else:
            shown = SCALARS[f.type]
        if f.label == F.LABEL_REPEATED:
            return f"repeated {shown}"
        if f.proto3_optional:
            return f"optional {shown}"
        return shown

    def write(self) -> str:
        messages = self._all_messages()
        for file in self.files:
            package_comment = self.comments.get((file.name, (FILE_PACKAGE,)))
            if package_comment:
                self.doc.intro.extend([*lines_of(package_comment), ""])
            for i, service in enumerate(file.service):
                self._service(file, (FILE_SERVICE, i), service)
            for i, message in enumerate(file.message_type):
                self._message(file, (FILE_MESSAGE, i), message, messages, prefix="")
            for i, enum in enumerate(file.enum_type):
                self._enum(file, (FILE_ENUM, i), enum, prefix="")
            for i, extension in enumerate(file.extension):
                self._extension(file, (FILE_EXTENSION, i), extension, messages)
        return "\n".join(self._document()) + "\n"

    def _all_messages(self) -> dict[str, D.DescriptorProto]:
        found: dict[str, D.DescriptorProto] = {}

        def walk(prefix: str, message: D.DescriptorProto) -> None:
            name = f"{prefix}.{message.name}"
            found[name] = message
            for nested in message.nested_type:
                walk(name, nested)

        for file in self.files:
            for message in file.message_type:
                walk(f".{file.package}", message)
        return found

    def _service(
        self, file: D.FileDescriptorProto, path: tuple[int, ...], service: D.ServiceDescriptorProto
    ) -> None:
        text = self.comment(file, path, f"service {service.name}")
        out = self.doc.services
        out += [f"### {service.name}", "", f"Defined in `{file.name}`.", "", *lines_of(text), ""]
        rpcs = ", ".join(f"[{m.name}](#{slug(f'{service.name}.{m.name}')})" for m in service.method)
        self.doc.index.append(
            f"- [{service.name}](#{slug(service.name)}): {first_sentence(text)} RPCs: {rpcs}."
        )
        for i, method in enumerate(service.method):
            self._method(file, (*path, SERVICE_METHOD, i), service, method)

    def _method(
        self,
        file: D.FileDescriptorProto,
        path: tuple[int, ...],
        service: D.ServiceDescriptorProto,
        method: D.MethodDescriptorProto,
    ) -> None:
        text = self.comment(file, path, f"rpc {service.name}.{method.name}")
        rules = self.rules(method)
        self.doc.codes.update(rules.errors)
        request = method.input_type.removeprefix(f".{self.package}.")
        response = method.output_type.removeprefix(f".{self.package}.")
        stream_in = "stream " if method.client_streaming else ""
        stream_out = "stream " if method.server_streaming else ""
        limit = Settings.model_fields[f"rate_limit_{rules.group.lower()}_per_minute"].default
        when_down = (
            "refused (UNAVAILABLE, HX902)"
            if rules.fail_closed
            else "a per-process budget of the same size"
        )
        out = self.doc.services
        out += [
            f"#### {service.name}.{method.name}",
            "",
            "```proto",
            f"rpc {method.name}({stream_in}{request}) returns ({stream_out}{response})",
            "```",
            "",
            *lines_of(text),
            "",
            "| | |",
            "|---|---|",
            f"| Request | [{request}](#{slug(request)}) |",
            f"| Response | [{response}](#{slug(response)}) |",
            f"| Access | {ACCESS[rules.access]} |",
            f"| Rate limit | {rules.group}: {limit} a minute (the default), "
            f"{COUNTED_BY[rules.group]} |",
            f"| Rate limiter unreachable | {when_down} |",
            f"| Idempotency | {self._idempotency(rules.idempotency)} |",
            "",
            "Errors:",
            "",
            *(
                f"- [{code}](#{code.lower()}) `{CATALOGUE[code].status.name}`: "
                f"{CATALOGUE[code].message}"
                for code in rules.errors
            ),
            "",
        ]

    @staticmethod
    def _idempotency(kind: str) -> str:
        return {
            "read": "read: no side effects; safe to retry",
            "idempotency_key": (
                "retryable: send an `idempotency-key` header (1 to 255 characters); a retry "
                "with the same key and request gets the first answer and changes nothing"
            ),
            "request_id": (
                "retryable: send the same `request_id` (a UUID) with each retry; a retry gets "
                "the first answer and changes nothing"
            ),
            "idempotent": "idempotent: doing it again has the same effect as doing it once",
            "none": "not idempotent: a retry may do it again, or fail because it was done",
        }[kind]

    def _message(
        self,
        file: D.FileDescriptorProto,
        path: tuple[int, ...],
        message: D.DescriptorProto,
        messages: dict[str, D.DescriptorProto],
        prefix: str,
    ) -> None:
        if message.options.map_entry:
            return
        name = f"{prefix}{message.name}"
        text = self.comment(file, path, f"message {name}")
        out = self.doc.messages
        out += [f"### {name}", "", f"Defined in `{file.name}`.", "", *lines_of(text), ""]
        if message.field:
            out += ["| Field | Number | Type | Description |", "|---|---|---|---|"]
            for i, f in enumerate(message.field):
                where = (*path, MESSAGE_FIELD, i)
                about = cell(self.comment(file, where, f"field {name}.{f.name}"))
                out.append(f"| `{f.name}` | {f.number} | {self.type_of(f, messages)} | {about} |")
        else:
            out.append("No fields.")
        out.append("")
        for i, nested in enumerate(message.nested_type):
            self._message(file, (*path, MESSAGE_NESTED, i), nested, messages, f"{name}.")
        for i, enum in enumerate(message.enum_type):
            self._enum(file, (*path, MESSAGE_ENUM, i), enum, f"{name}.")

    def _enum(
        self,
        file: D.FileDescriptorProto,
        path: tuple[int, ...],
        enum: D.EnumDescriptorProto,
        prefix: str,
    ) -> None:
        name = f"{prefix}{enum.name}"
        text = self.comment(file, path, f"enum {name}")
        out = self.doc.enums
        out += [f"### {name}", "", f"Defined in `{file.name}`.", "", *lines_of(text), ""]
        out += ["| Value | Number | Description |", "|---|---|---|"]
        for i, value in enumerate(enum.value):
            about = cell(self.comment(file, (*path, ENUM_VALUE, i), f"enum value {value.name}"))
            out.append(f"| `{value.name}` | {value.number} | {about} |")
        out.append("")

    def _extension(
        self,
        file: D.FileDescriptorProto,
        path: tuple[int, ...],
        extension: D.FieldDescriptorProto,
        messages: dict[str, D.DescriptorProto],
    ) -> None:
        about = cell(self.comment(file, path, f"extension {extension.name}"))
        extendee = extension.extendee.lstrip(".")
        self.doc.options.append(
            f"| `({self.package}.{extension.name})` | {extendee} | {extension.number} | "
            f"{self.type_of(extension, messages)} | {about} |"
        )

    def _document(self) -> Iterator[str]:
        doc = self.doc
        version = doc.package.rpartition(".")[2]
        yield f"# {doc.package} API reference"
        yield ""
        yield (
            f"<!-- Generated from protos/hustle/{version}/*.proto by `make protos` "
            "(scripts/gen_reference.py): edit the protos' comments, not this file. -->"
        )
        yield ""
        yield from doc.intro
        yield (
            "Sections: [Services](#services) · [Messages](#messages) · [Enums](#enums) · "
            "[Method options](#method-options) · [Errors](#errors). The versioning policy "
            "(what may change within a version, deprecation and sunset) is in "
            "[docs/VERSIONING.md](../VERSIONING.md)."
        )
        yield ""
        yield "## Services"
        yield ""
        yield from doc.index
        yield ""
        yield from doc.services
        yield "## Messages"
        yield ""
        yield from doc.messages
        yield "## Enums"
        yield ""
        yield from doc.enums
        yield "## Method options"
        yield ""
        yield (
            "Custom options on `google.protobuf.MethodOptions` that declare each RPC's policy "
            "(read them through reflection or from the descriptors of generated code)."
        )
        yield ""
        yield "| Option | Extends | Number | Type | Description |"
        yield "|---|---|---|---|---|"
        yield from doc.options
        yield ""
        yield "## Errors"
        yield ""
        yield (
            "Every error is a gRPC status whose details hold a `google.rpc.ErrorInfo` with "
            '`domain` "hustle" and `reason` one of these codes (the message is written for '
            "people and may change; the code may not). HX901 (`INTERNAL`, nothing else said) "
            "can answer any RPC and is listed under none."
        )
        yield ""
        yield "| Code | gRPC status | Meaning |"
        yield "|---|---|---|"
        for code in sorted({*doc.codes, "HX901"}):
            spec = CATALOGUE[code]
            yield f'| <a id="{code.lower()}"></a>{code} | `{spec.status.name}` | {spec.message} |'


def generate(out: Path) -> list[Path]:
    with tempfile.TemporaryDirectory(prefix="hustle-reference-") as tmp:
        image = build_image(Path(tmp) / "image.binpb")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for package, name in PACKAGES.items():
        try:
            text = Writer(package, image).write()
        except ContractError as exc:
            raise SystemExit(f"gen_reference: {exc}") from None
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written


def main() -> None:
    out = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "docs" / "api"
    generate(out)


if __name__ == "__main__":
    main()
