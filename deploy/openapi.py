"""Generate the OpenAPI (Swagger 2) description of the REST surface from protos/.

The generator is grpc-gateway's ``protoc-gen-swagger`` (Debian package
``golang-grpc-gateway``), which reads the same ``google.api.http`` annotations
the Envoy gateway transcodes with, so the document cannot drift from the routes.

That plugin predates proto3 ``optional`` and protoc refuses to hand it such
files. ``optional`` only adds presence tracking, which OpenAPI 2 has no way to
express anyway, so we feed protoc a descriptor set (built by buf, comments
included) with the presence markers removed; the schema comes out the same.

    python deploy/openapi.py [OUT_DIR]   # writes OUT_DIR/simulation.swagger.json
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from gateway import buf_descriptor_set  # sibling script in deploy/
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "docs" / "openapi"
MERGED_NAME = "simulation"  # -> simulation.swagger.json

# What the protos cannot say without protoc-gen-swagger's own annotations: the
# document's name and that every call needs the `x-api-key` header.
DOCUMENT_HEADER = {
    "info": {"title": "Simulation Config Service REST API", "version": "v1"},
    "securityDefinitions": {"api_key": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
    "security": [{"api_key": []}],
}


def _plugin() -> str:
    found = shutil.which("protoc-gen-swagger")
    if not found:
        raise SystemExit("protoc-gen-swagger not found: apt-get install golang-grpc-gateway")
    return found


def strip_proto3_optional(fds: descriptor_pb2.FileDescriptorSet) -> None:
    """Turn `optional` fields into plain ones and drop their synthetic oneofs."""
    for file in fds.file:
        for message in file.message_type:
            _strip_message(message)


def _strip_message(message: descriptor_pb2.DescriptorProto) -> None:
    synthetic = {f.oneof_index for f in message.field if f.proto3_optional}
    for field in message.field:
        if field.proto3_optional:
            field.proto3_optional = False
            field.ClearField("oneof_index")
    # Synthetic oneofs always follow the real ones, so dropping them from the
    # end leaves every real field's oneof_index valid.
    for index in sorted(synthetic, reverse=True):
        del message.oneof_decl[index]
    for nested in message.nested_type:
        _strip_message(nested)


def generate(out_dir: Path = OUT_DIR) -> Path:
    """Write `<out_dir>/simulation.swagger.json` and return its path."""
    fds = buf_descriptor_set()
    strip_proto3_optional(fds)
    ours = [f.name for f in fds.file if f.name.startswith("simulation/")]
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        descriptor = Path(tmp) / "protos.binpb"
        descriptor.write_bytes(fds.SerializeToString())
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"--descriptor_set_in={descriptor}",
                f"--plugin=protoc-gen-swagger={_plugin()}",
                f"--swagger_out=allow_merge=true,merge_file_name={MERGED_NAME}:{out_dir}",
                *ours,
            ],
            check=True,
        )
    target = out_dir / f"{MERGED_NAME}.swagger.json"
    document = json.loads(target.read_text())
    document.update(DOCUMENT_HEADER)
    target.write_text(json.dumps(document, indent=2) + "\n")
    return target


if __name__ == "__main__":
    target = generate(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR)
    print(f"wrote {target}")
