"""Makes the Python client's generated code from ``generated/`` (run by ``make generate``).

Two outputs, both committed and checked for freshness by ``make check-generated``:

* ``clients/python/src/simconfig_client/v1/``: the stubs of ``generated/simulation/v1/``, byte
  for byte except that they import each other as ``simconfig_client.v1``. They are the same
  protoc output the server runs on, so the two cannot drift; both register the same
  descriptors, so a process may import both and share the message classes.
* ``clients/python/src/simconfig_client/_methods.py``: one typed method per RPC of every
  public service (those with REST bindings), and an ``iter_*`` helper per paginated List RPC,
  written from the descriptors so a new RPC is covered by the next ``make generate``.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "generated" / "simulation" / "v1"
PACKAGE = ROOT / "clients" / "python" / "src" / "simconfig_client"
STUBS = PACKAGE / "v1"

_IMPORT = re.compile(r"^from simulation\.v1 import", flags=re.MULTILINE)
_STUB_FILES = ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")


def copy_stubs() -> None:
    """Copies the server's stubs under ``simconfig_client.v1``, rewriting their imports."""
    shutil.rmtree(STUBS, ignore_errors=True)
    STUBS.mkdir(parents=True)
    (STUBS / "__init__.py").write_text('"""Stubs generated from protos/simulation/v1."""\n')
    for pattern in _STUB_FILES:
        for source in sorted(SOURCE.glob(pattern)):
            text = _IMPORT.sub("from simconfig_client.v1 import", source.read_text())
            (STUBS / source.name).write_text(text)


def snake(name: str) -> str:
    """``CreateScenario`` → ``create_scenario``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _summary(comment: str) -> str:
    """The first paragraph of a proto comment, as one docstring line or a few."""
    paragraph = comment.strip().split("\n\n")[0].split(". ")[0].rstrip(".") + "."
    text = " ".join(line.strip() for line in paragraph.splitlines())
    return text.replace("\\", "\\\\").replace('"""', "'''") or "Calls the RPC."


def _rpc_comments() -> dict[str, str]:
    """``Service.Method`` → the comment above its ``rpc`` line in protos/ (protoc's Python
    output keeps no source comments)."""
    comments = {}
    for proto in sorted((ROOT / "protos" / "simulation" / "v1").glob("*.proto")):
        service = ""
        block: list[str] = []
        for line in proto.read_text().splitlines():
            stripped = line.strip()
            if match := re.match(r"service (\w+)", stripped):
                service = match.group(1)
            if stripped.startswith("//"):
                block.append(stripped[2:].strip())
                continue
            if match := re.match(r"rpc (\w+)\(", stripped):
                comments[f"{service}.{match.group(1)}"] = "\n".join(block)
            block = []
    return comments


def _docstring(first_line: str) -> list[str]:
    """The docstring lines of a method, its first paragraph wrapped to the line length."""
    wrapped = textwrap.wrap(first_line, width=88)
    return [
        f'        """{wrapped[0]}',
        *(f"        {line}" for line in wrapped[1:]),
        "",
        "        Pass a request message, or its fields as keyword arguments.",
    ]


def _module_alias(message) -> str:
    return Path(message.file.name).stem + "_pb2"


def _paged_item_field(method):
    """The repeated message field a paginated List response carries, or None."""
    request, response = method.input_type, method.output_type
    if "page_token" not in request.fields_by_name:
        return None
    if "next_page_token" not in response.fields_by_name:
        return None
    repeated = [f for f in response.fields if f.is_repeated and f.message_type is not None]
    return repeated[0] if len(repeated) == 1 else None


def public_services():
    """Every service with REST bindings, in file then declaration order."""
    sys.path.insert(0, str(ROOT / "generated"))
    import importlib

    from google.api import annotations_pb2

    services = []
    for path in sorted(SOURCE.glob("*_pb2.py")):
        module = importlib.import_module(f"simulation.v1.{path.stem}")
        for service in module.DESCRIPTOR.services_by_name.values():
            if any(m.GetOptions().HasExtension(annotations_pb2.http) for m in service.methods):
                services.append(service)
    return services


def methods_module(services) -> str:
    """The source of ``_methods.py``."""
    modules = sorted(
        {
            _module_alias(message)
            for service in services
            for method in service.methods
            for message in (method.input_type, method.output_type)
        }
        | {
            _module_alias(field.message_type)
            for service in services
            for method in service.methods
            if (field := _paged_item_field(method)) is not None
        }
    )
    lines = [
        '"""One typed method per RPC. Made by tools/generate_client.py from the protos: do not',
        'edit; run `make generate`."""',
        "",
        "from __future__ import annotations",
        "",
        "from collections.abc import Iterator",
        "from typing import Any",
        "",
    ]
    lines += ["from simconfig_client.v1 import ("]
    lines += [f"    {alias}," for alias in modules]
    lines += [")"]
    lines += [
        "",
        "# The public services, whose every method the client's retry policy covers.",
        "SERVICES = (",
        *(f'    "{service.full_name}",' for service in services),
        ")",
        "",
        "",
        "class GeneratedMethods:",
        '    """The RPCs of every public service; ``Client`` supplies ``_unary`` and ``_stream``."""',
        "",
        "    def _request(self, request, fields, request_type):",
        "        raise NotImplementedError",
        "",
        "    def _unary(self, path, request, fields, timeout, request_type, response_type):",
        "        raise NotImplementedError",
        "",
        "    def _stream(self, path, request, fields, timeout, request_type, response_type):",
        "        raise NotImplementedError",
    ]
    comments = _rpc_comments()
    for service in services:
        for method in service.methods:
            request = f"{_module_alias(method.input_type)}.{method.input_type.name}"
            response = f"{_module_alias(method.output_type)}.{method.output_type.name}"
            summary = _summary(comments.get(f"{service.name}.{method.name}", ""))
            path = f"/{service.full_name}/{method.name}"
            streaming = method.server_streaming
            returns = f"Iterator[{response}]" if streaming else response
            call = "_stream" if streaming else "_unary"
            lines += [
                "",
                f"    def {snake(method.name)}(",
                "        self,",
                f"        request: {request} | None = None,",
                "        /,",
                "        *,",
                "        timeout: float | None = None,",
                "        **fields: Any,",
                f"    ) -> {returns}:",
                *_docstring(f"{service.name}.{method.name}: {summary}"),
                '        """',
                f"        return self.{call}(",
                f'            "{path}",',
                "            request,",
                "            fields,",
                "            timeout,",
                f"            {request},",
                f"            {response},",
                "        )",
            ]
            item = _paged_item_field(method)
            if item is not None and not streaming:
                item_type = f"{_module_alias(item.message_type)}.{item.message_type.name}"
                helper = "iter_" + snake(method.name).removeprefix("list_")
                lines += [
                    "",
                    f"    def {helper}(",
                    "        self,",
                    f"        request: {request} | None = None,",
                    "        /,",
                    "        *,",
                    "        timeout: float | None = None,",
                    "        **fields: Any,",
                    f"    ) -> Iterator[{item_type}]:",
                    f'        """Every item of every page of {method.name}, fetched page by page."""',
                    f"        page = self._request(request, fields, {request})",
                    "        while True:",
                    f"            response = self.{snake(method.name)}(page, timeout=timeout)",
                    f"            yield from response.{item.name}",
                    "            if not response.next_page_token:",
                    "                return",
                    "            page.page_token = response.next_page_token",
                ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Writes the client's stubs and typed methods."""
    copy_stubs()
    (PACKAGE / "_methods.py").write_text(methods_module(public_services()))


if __name__ == "__main__":
    main()
