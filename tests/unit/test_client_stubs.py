"""The Python client's generated code is what tools/generate_client.py makes from generated/.

CI's `make check-generated` regenerates and diffs; this says the same thing in the test suite,
so a proto change whose client code was not regenerated fails here too.
"""

from __future__ import annotations

import re

from tools import generate_client


def test_the_client_stubs_are_the_servers_with_their_imports_renamed():
    server_files = sorted(
        p.name
        for pattern in generate_client._STUB_FILES
        for p in generate_client.SOURCE.glob(pattern)
    )
    client_files = sorted(
        p.name
        for pattern in generate_client._STUB_FILES
        for p in generate_client.STUBS.glob(pattern)
    )
    assert client_files == server_files
    for name in server_files:
        server = (generate_client.SOURCE / name).read_text()
        client = (generate_client.STUBS / name).read_text()
        assert client == re.sub(
            r"^from simulation\.v1 import", "from simconfig_client.v1 import", server, flags=re.M
        ), name


def test_the_typed_methods_are_fresh():
    expected = generate_client.methods_module(generate_client.public_services())

    assert (generate_client.PACKAGE / "_methods.py").read_text() == expected
