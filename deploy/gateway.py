"""Launch the Envoy REST gateway in front of the Simulation Config Service.

Envoy's ``grpc_json_transcoder`` turns REST/JSON into gRPC using the
``google.api.http`` annotations of ``protos/``. It reads them from a binary
descriptor set, which this script builds on demand (``deploy/simconfig.binpb``,
not committed: it is derived from ``protos/`` and rebuilt whenever a proto is
newer than it).

Commands::

    python deploy/gateway.py             # build the descriptor if stale, exec Envoy
    python deploy/gateway.py descriptor  # (re)build the descriptor set only
    python deploy/gateway.py render [FILE]  # print (or write) the rendered Envoy config
    python deploy/gateway.py check       # build, render and `envoy --mode validate`

Settings (environment): ``SIMCONFIG_GATEWAY_HOST`` (default 127.0.0.1),
``SIMCONFIG_GATEWAY_PORT`` (8080), ``SIMCONFIG_GATEWAY_ADMIN_PORT`` (9901, on
127.0.0.1 only), ``SIMCONFIG_GATEWAY_ACCESS_LOG`` (/dev/stdout),
``SIMCONFIG_HOST`` (127.0.0.1) and ``SIMCONFIG_PORT`` (50051) of the gRPC server,
``SIMCONFIG_GATEWAY_DESCRIPTOR`` (where Envoy reads the descriptor set; default
the one this script builds), ``SIMCONFIG_ENVOY_BIN`` to use another Envoy
binary, ``SIMCONFIG_GATEWAY_LOG_LEVEL`` (warning).

TLS (each off unless set): ``SIMCONFIG_GATEWAY_TLS_CERT`` and
``SIMCONFIG_GATEWAY_TLS_KEY`` make the public listener HTTPS.
``SIMCONFIG_GATEWAY_UPSTREAM_CA`` makes the gateway speak TLS to the gRPC
server (the server's ``SIMCONFIG_TLS_CERT``), trusting that CA and checking
that the server's certificate names ``SIMCONFIG_GATEWAY_UPSTREAM_SERVER_NAME``
(default: the server's host); ``SIMCONFIG_GATEWAY_UPSTREAM_CERT`` and
``SIMCONFIG_GATEWAY_UPSTREAM_KEY`` are the client certificate it presents when
the server requires one (``SIMCONFIG_TLS_CLIENT_CA``).
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "envoy.yaml"
DESCRIPTOR = ROOT / "deploy" / "simconfig.binpb"
PROTOS = ROOT / "protos"

# Error detail types the server packs into grpc-status-details-bin. No proto
# of ours imports them, so buf leaves them out; Envoy needs them in its pool to
# print BadRequest / ErrorInfo / PreconditionFailure in JSON error bodies.
ERROR_DETAIL_MODULES = ("google.rpc.status_pb2", "google.rpc.error_details_pb2")


@dataclass(frozen=True)
class GatewaySettings:
    """Where the gateway listens and which gRPC server it forwards to."""

    listen_host: str
    listen_port: int
    admin_port: int
    access_log: str
    upstream_host: str
    upstream_port: int
    # Where Envoy reads the descriptor set; None: the one this script builds.
    descriptor: str | None = None
    # HTTPS on the public listener: certificate chain and key files.
    tls_cert: str | None = None
    tls_key: str | None = None
    # TLS to the gRPC server: the CA that signed its certificate, the name that
    # certificate must carry, and the client certificate for mutual TLS.
    upstream_ca: str | None = None
    upstream_server_name: str | None = None
    upstream_cert: str | None = None
    upstream_key: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> GatewaySettings:
        """Read the settings, failing with the name of the first bad variable."""
        env = dict(os.environ if env is None else env)
        settings = cls(
            listen_host=env.get("SIMCONFIG_GATEWAY_HOST", "127.0.0.1"),
            listen_port=_port(env, "SIMCONFIG_GATEWAY_PORT", 8080),
            admin_port=_port(env, "SIMCONFIG_GATEWAY_ADMIN_PORT", 9901),
            access_log=env.get("SIMCONFIG_GATEWAY_ACCESS_LOG", "/dev/stdout"),
            upstream_host=env.get("SIMCONFIG_HOST", "127.0.0.1"),
            upstream_port=_port(env, "SIMCONFIG_PORT", 50051),
            descriptor=env.get("SIMCONFIG_GATEWAY_DESCRIPTOR") or None,
            tls_cert=env.get("SIMCONFIG_GATEWAY_TLS_CERT") or None,
            tls_key=env.get("SIMCONFIG_GATEWAY_TLS_KEY") or None,
            upstream_ca=env.get("SIMCONFIG_GATEWAY_UPSTREAM_CA") or None,
            upstream_server_name=env.get("SIMCONFIG_GATEWAY_UPSTREAM_SERVER_NAME") or None,
            upstream_cert=env.get("SIMCONFIG_GATEWAY_UPSTREAM_CERT") or None,
            upstream_key=env.get("SIMCONFIG_GATEWAY_UPSTREAM_KEY") or None,
        )
        _together(settings.tls_cert, settings.tls_key, "SIMCONFIG_GATEWAY_TLS_CERT/KEY")
        _together(
            settings.upstream_cert, settings.upstream_key, "SIMCONFIG_GATEWAY_UPSTREAM_CERT/KEY"
        )
        if settings.upstream_cert and not settings.upstream_ca:
            raise SystemExit(
                "SIMCONFIG_GATEWAY_UPSTREAM_CERT needs SIMCONFIG_GATEWAY_UPSTREAM_CA: a client "
                "certificate is only sent over TLS"
            )
        if settings.admin_port == settings.listen_port:
            raise SystemExit(
                "SIMCONFIG_GATEWAY_ADMIN_PORT must differ from SIMCONFIG_GATEWAY_PORT: "
                "the admin interface never shares the public listener"
            )
        if not settings.access_log.strip():
            raise SystemExit("SIMCONFIG_GATEWAY_ACCESS_LOG must be a file path, e.g. /dev/stdout")
        return settings


def _together(first: str | None, second: str | None, names: str) -> None:
    if bool(first) != bool(second):
        raise SystemExit(f"{names} must be set together")


def _certificate(cert: str, key: str) -> dict:
    return {"certificate_chain": {"filename": cert}, "private_key": {"filename": key}}


def listener_tls(settings: GatewaySettings) -> str:
    """The listener's ``transport_socket`` entry (flow YAML), or nothing for plain HTTP."""
    if not settings.tls_cert:
        return ""
    context = {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
        "DownstreamTlsContext",
        "common_tls_context": {
            "tls_certificates": [_certificate(settings.tls_cert, settings.tls_key)],
            "alpn_protocols": ["h2", "http/1.1"],
        },
    }
    socket = {"name": "envoy.transport_sockets.tls", "typed_config": context}
    return "transport_socket: " + json.dumps(socket)


def upstream_tls(settings: GatewaySettings) -> str:
    """The cluster's ``transport_socket`` entry (flow YAML), or nothing for plaintext gRPC."""
    if not settings.upstream_ca:
        return ""
    name = settings.upstream_server_name or settings.upstream_host
    try:
        ipaddress.ip_address(name)
        san_type = "IP_ADDRESS"
    except ValueError:
        san_type = "DNS"
    common: dict = {
        "alpn_protocols": ["h2"],
        "validation_context": {
            "trusted_ca": {"filename": settings.upstream_ca},
            "match_typed_subject_alt_names": [{"san_type": san_type, "matcher": {"exact": name}}],
        },
    }
    if settings.upstream_cert:
        common["tls_certificates"] = [_certificate(settings.upstream_cert, settings.upstream_key)]
    context = {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": common,
    }
    if san_type == "DNS":
        context["sni"] = name
    socket = {"name": "envoy.transport_sockets.tls", "typed_config": context}
    return "transport_socket: " + json.dumps(socket)


def _write_atomically(path: Path, text: str) -> None:
    """Write-then-rename: a reader never sees half a config."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _port(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SystemExit(f"{name} must be a TCP port (1-65535), got {raw!r}")
    return int(raw)


def _tool(name: str, override: str | None = None) -> str:
    """Find a tool next to this interpreter first (the project venv), then on PATH."""
    if override:
        return override
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: run `make install` (it comes with the dev extras)")
    return found


def buf_descriptor_set():
    """`buf build` of protos/ as a FileDescriptorSet, imports and comments included."""
    from google.protobuf import descriptor_pb2

    done = subprocess.run(
        [_tool("buf"), "build", "--as-file-descriptor-set", "-o", "-#format=binpb"],
        cwd=ROOT,
        capture_output=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"buf build failed:\n{done.stderr.decode(errors='replace')}")
    return descriptor_pb2.FileDescriptorSet.FromString(done.stdout)


def build_descriptor(out: Path = DESCRIPTOR) -> Path:
    """Build the FileDescriptorSet Envoy transcodes with, error detail types included."""
    fds = buf_descriptor_set()
    present = {f.name for f in fds.file}
    for module in ERROR_DETAIL_MODULES:
        _append_with_deps(fds, importlib.import_module(module).DESCRIPTOR, present)
    # Write-then-rename under a unique name: a gateway starting concurrently
    # never reads half a file, and two builders never share a temp file.
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".simconfig.", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(fds.SerializeToString())
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from an Envoy running as another user
    os.replace(tmp, out)
    return out


def _append_with_deps(fds, file_descriptor, present: set[str]) -> None:
    """Append a file after its dependencies: Envoy builds its pool in order."""
    if file_descriptor.name in present:
        return
    for dep in file_descriptor.dependencies:
        _append_with_deps(fds, dep, present)
    file_descriptor.CopyToProto(fds.file.add())
    present.add(file_descriptor.name)


def ensure_descriptor(path: Path = DESCRIPTOR) -> Path:
    """Rebuild the descriptor set when it is missing or older than any proto."""
    newest = max(p.stat().st_mtime for p in PROTOS.rglob("*.proto"))
    if not path.exists() or path.stat().st_mtime < newest:
        build_descriptor(path)
    return path


_PATH_VARIABLE = re.compile(r"\{([a-z_.]+)(?:=[^}]*)?\}")


def _camel(path: str) -> str:
    """The JSON spelling of a field path, which the transcoder accepts too: ``scenarioId``."""
    return ".".join(
        re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), part) for part in path.split(".")
    )


def path_bound_fields(descriptor: Path = DESCRIPTOR) -> dict[str, list[str]]:
    """``/package.Service/Method`` → the request fields its REST bindings take from the URL path.

    Read from the ``google.api.http`` annotations of the descriptor set Envoy transcodes with,
    additional bindings included, so a new route is covered by the next render.
    """
    fds = read_descriptor_set(descriptor)
    bound: dict[str, list[str]] = {}
    for binding in http_bindings(fds):
        fields = bound.setdefault(binding.rpc, [])
        for field in _PATH_VARIABLE.findall(binding.template):
            if field not in fields:
                fields.append(field)
    return {rpc: fields for rpc, fields in bound.items() if fields}


BODY_FIELDS_LUA = ROOT / "deploy" / "body_fields.lua"
# Message types the transcoder parses from their own JSON form (Struct takes any object,
# Timestamp a string, ...): the scanner does not look inside them.
_OPAQUE_PACKAGE_PREFIX = "google."
_TYPE_MESSAGE = 11  # FieldDescriptorProto.TYPE_MESSAGE


@dataclass(frozen=True)
class HttpBinding:
    """One REST binding of an RPC (its main rule or an additional binding)."""

    rpc: str  # /package.Service/Method
    request_type: str  # full name of the request message: simulation.v1.UpdateScenarioRequest
    method: str  # HTTP method
    template: str  # URL template without its custom verb: /v1/scenarios/{scenario.id}
    verb: str  # custom verb (`undelete` of `:undelete`), or ""
    body: str  # the rule's body: "", "*" or a request field name


def _split_verb(template: str) -> tuple[str, str]:
    """``/v1/scenarios/{scenario_id}:undelete`` → (``/v1/scenarios/{scenario_id}``, ``undelete``)."""
    last = template.rsplit("/", 1)[-1]
    if ":" in last.rsplit("}", 1)[-1]:
        path, _, verb = template.rpartition(":")
        return path, verb
    return template, ""


def read_descriptor_set(descriptor: Path = DESCRIPTOR):
    """The FileDescriptorSet at ``descriptor``, its ``google.api.http`` options parsed."""
    # Imported first: options of an extension unknown when parsing stay unknown fields.
    from google.api import annotations_pb2  # noqa: F401
    from google.protobuf import descriptor_pb2

    return descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())


def http_bindings(fds) -> list[HttpBinding]:
    """Every ``google.api.http`` binding of ``read_descriptor_set``, additional ones included."""
    from google.api import annotations_pb2

    found: list[HttpBinding] = []
    for file in fds.file:
        for service in file.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in (rule, *rule.additional_bindings):
                    pattern = binding.WhichOneof("pattern")
                    if pattern == "custom":
                        verb, template = binding.custom.kind, binding.custom.path
                    else:
                        verb, template = pattern.upper(), getattr(binding, pattern)
                    path, custom_verb = _split_verb(template)
                    found.append(
                        HttpBinding(
                            rpc=f"/{file.package}.{service.name}/{method.name}",
                            request_type=method.input_type.lstrip("."),
                            method=verb,
                            template=path,
                            verb=custom_verb,
                            body=binding.body,
                        )
                    )
    return found


@dataclass(frozen=True)
class BodyBinding:
    """A REST binding that takes a JSON body, and the message that body must be."""

    binding: HttpBinding
    body_type: str  # full name of the body message: simulation.v1.Scenario


def _message_index(fds) -> dict:
    """Full name (no leading dot) → DescriptorProto, nested types included."""
    index: dict = {}

    def add(prefix: str, messages) -> None:
        for message in messages:
            name = f"{prefix}.{message.name}" if prefix else message.name
            index[name] = message
            add(name, message.nested_type)

    for file in fds.file:
        add(file.package, file.message_type)
    return index


def body_bindings(fds) -> list[BodyBinding]:
    """Every REST binding with a body, most specific template first.

    A body of ``*`` is the request message; a body naming a field is that field's message (a
    field that is not a message is left to the transcoder). Literal segments sort before
    variables at the first place they differ, the order in which the transcoder's path
    matcher prefers them.
    """
    messages = _message_index(fds)
    found: list[BodyBinding] = []
    for binding in http_bindings(fds):
        if not binding.body:
            continue
        body_type = binding.request_type
        if binding.body != "*":
            (field,) = [f for f in messages[body_type].field if f.name == binding.body]
            if field.type != _TYPE_MESSAGE:
                continue
            body_type = field.type_name.lstrip(".")
        found.append(BodyBinding(binding, body_type))
    return sorted(
        found, key=lambda b: [part.startswith("{") for part in b.binding.template.split("/")]
    )


def body_message_fields(
    fds, bindings: list[BodyBinding]
) -> dict[str, dict[str, str | dict[str, str] | None]]:
    """The fields of every message a body can contain, by both names the transcoder accepts.

    Each field maps to what its JSON value is checked against: a message type name, ``{"map":
    type}`` for a map of messages, or None where the transcoder alone checks the value
    (scalars, enums, ``google.*`` types such as Struct, maps of scalars).
    """
    index = _message_index(fds)
    schema: dict[str, dict[str, str | dict[str, str] | None]] = {}
    pending = [b.body_type for b in bindings]
    while pending:
        name = pending.pop()
        if name in schema or name.startswith(_OPAQUE_PACKAGE_PREFIX):
            continue
        fields: dict[str, str | dict[str, str] | None] = {}
        for field in index[name].field:
            child: str | dict[str, str] | None = None
            if field.type == _TYPE_MESSAGE:
                type_name = field.type_name.lstrip(".")
                entry = index[type_name]
                if entry.options.map_entry:
                    (value,) = [f for f in entry.field if f.name == "value"]
                    value_type = value.type_name.lstrip(".")
                    if value.type == _TYPE_MESSAGE and not value_type.startswith(
                        _OPAQUE_PACKAGE_PREFIX
                    ):
                        child = {"map": value_type}
                        pending.append(value_type)
                elif not type_name.startswith(_OPAQUE_PACKAGE_PREFIX):
                    child = type_name
                    pending.append(type_name)
            for key in (field.name, field.json_name or _camel(field.name)):
                fields[key] = child
        schema[name] = fields
    return schema


def _lua_string(text: str) -> str:
    # A JSON string literal is a Lua one too for the ASCII names and templates used here.
    if not text.isascii():
        raise SystemExit(f"non-ASCII name in the protos' REST bindings: {text!r}")
    return json.dumps(text)


def _lua_value(value: str | dict[str, str] | None) -> str:
    if value is None:
        return "false"
    if isinstance(value, dict):
        return "{map = " + _lua_string(value["map"]) + "}"
    return _lua_string(value)


def _lua_pattern(template: str) -> str:
    """A URL template as an anchored Lua pattern: `{var}` is one path segment."""
    parts = re.split(r"(\{[^}]*\})", template)
    return (
        "^"
        + "".join(
            "[^/]+" if part.startswith("{") else re.sub(r"([^\w/])", r"%\1", part) for part in parts
        )
        + "$"
    )


def body_field_check(descriptor: Path = DESCRIPTOR) -> str:
    """The Lua source of the unknown-body-field check, its tables generated from the protos.

    deploy/body_fields.lua is the scanner; the tables before it list, for each REST binding
    with a body, the message that body must be and the fields of every message it can hold,
    so a new route or field is covered by the next render.
    """
    fds = read_descriptor_set(descriptor)
    bindings = body_bindings(fds)
    messages = body_message_fields(fds, bindings)
    # Every custom verb, not only those of routes with a body: the transcoder splits a known
    # verb off the last segment before matching (`PUT /v1/scenarios/a:undelete` is no update).
    verbs = sorted({b.verb for b in http_bindings(fds) if b.verb})
    lines = ["-- Generated by deploy/gateway.py from the protos' google.api.http bindings.", ""]
    lines.append("VERBS = {" + ", ".join(f"[{_lua_string(v)}] = true" for v in verbs) + "}")
    lines.append("ROUTES = {")
    for each in bindings:
        b = each.binding
        template = b.template + (f":{b.verb}" if b.verb else "")
        lines.append(
            f"  {{method = {_lua_string(b.method)}, verb = {_lua_string(b.verb)}, "
            f"pattern = {_lua_string(_lua_pattern(b.template))}, "
            f"template = {_lua_string(template)}, body = {_lua_string(each.body_type)}}},"
        )
    lines.append("}")
    lines.append("MESSAGES = {")
    for name in sorted(messages):
        fields = ", ".join(
            f"[{_lua_string(key)}] = {_lua_value(child)}"
            for key, child in sorted(messages[name].items())
        )
        lines.append(f"  [{_lua_string(name)}] = {{{fields}}},")
    lines.append("}")
    return "\n".join(lines) + "\n\n" + BODY_FIELDS_LUA.read_text()


def path_field_guards(descriptor: Path = DESCRIPTOR) -> str:
    """Envoy routes answering 400 to a REST call whose query string names a path-bound field.

    The transcoder would let ``DELETE /v1/scenarios/A?scenario_id=B`` delete B: the query
    parameter overrides the path. Routes match the transcoded gRPC path, and the transcoder
    keeps the client's URL in ``x-envoy-original-path``, so each guard matches the method and
    a query parameter named after one of its path fields (proto or JSON spelling).
    """
    lines = []
    for path, fields in path_bound_fields(descriptor).items():
        names = sorted({re.escape(name) for field in fields for name in (field, _camel(field))})
        regex = r"[^?]*\?(?:.*&)?(?:" + "|".join(names) + r")(?:[=&].*)?"
        message = (
            f"query parameter {' or '.join(fields)} is bound by the URL path and must not "
            "be sent in the query string"
        )
        lines += [
            "              - match:",
            f"                  path: {json.dumps(path)}",
            "                  headers:",
            "                  - name: x-envoy-original-path",
            f"                    string_match: {{safe_regex: {{regex: {json.dumps(regex)}}}}}",
            "                direct_response:",
            "                  status: 400",
            f"                  body: {{inline_string: {json.dumps(message)}}}",
        ]
    return "\n".join(lines)


def render_config(settings: GatewaySettings, descriptor: Path = DESCRIPTOR) -> str:
    """Fill the Envoy template; `substitute` fails loudly on a missing key."""
    return string.Template(TEMPLATE.read_text()).substitute(
        PATH_FIELD_GUARDS=path_field_guards(descriptor),
        BODY_FIELD_CHECK=json.dumps(body_field_check(descriptor)),
        LISTEN_HOST=settings.listen_host,
        LISTEN_PORT=settings.listen_port,
        ADMIN_PORT=settings.admin_port,
        ACCESS_LOG=settings.access_log,
        UPSTREAM_HOST=settings.upstream_host,
        UPSTREAM_PORT=settings.upstream_port,
        DESCRIPTOR=settings.descriptor or descriptor,
        LISTENER_TLS=listener_tls(settings),
        UPSTREAM_TLS=upstream_tls(settings),
    )


# Envoy's flags besides the config and the log level, also given to the Envoy
# of deploy/compose.yaml. Hot restart is off so several gateways can share a
# host; access log lines are written within a second, not Envoy's default 10 s.
ENVOY_FLAGS = ("--disable-hot-restart", "--file-flush-interval-msec", "1000")


def envoy_command(config_yaml: str, *extra: str) -> list[str]:
    """Envoy's argv."""
    level = os.environ.get("SIMCONFIG_GATEWAY_LOG_LEVEL", "warning")
    envoy = _tool("envoy", os.environ.get("SIMCONFIG_ENVOY_BIN"))
    return [envoy, "--config-yaml", config_yaml, *ENVOY_FLAGS, "-l", level, *extra]


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "serve"
    if command == "descriptor":
        print(f"wrote {build_descriptor().relative_to(ROOT)}")
        return
    settings = GatewaySettings.from_env()
    # Our descriptor set is kept fresh either way: SIMCONFIG_GATEWAY_DESCRIPTOR only
    # changes the path written into the config (where a container mounts it).
    config = render_config(settings, ensure_descriptor())
    if command == "render":
        if len(argv) > 1:
            _write_atomically(Path(argv[1]), config)
        else:
            print(config)
    elif command == "check":
        subprocess.run(envoy_command(config, "--mode", "validate"), check=True)
    elif command == "serve":
        scheme = "https" if settings.tls_cert else "http"
        upstream = "grpcs" if settings.upstream_ca else "grpc"
        print(
            f"REST gateway listening on {scheme}://{settings.listen_host}:{settings.listen_port}"
            f" -> {upstream} {settings.upstream_host}:{settings.upstream_port}"
            f" (admin on http://127.0.0.1:{settings.admin_port})",
            flush=True,
        )
        cmd = envoy_command(config)
        os.execv(cmd[0], cmd)  # noqa: S606 - Envoy replaces us, so signals reach it directly
    else:
        raise SystemExit(f"unknown command {command!r}: use serve, descriptor, render or check")


if __name__ == "__main__":
    main(sys.argv[1:])
