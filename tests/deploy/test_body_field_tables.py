"""deploy/gateway.py's tables for the Lua body-field check, on a made-up descriptor.

The service's protos have no map whose values are messages; tests/deploy/synthetic_protos.py
has them, so these tests show the tables let the scanner descend into such values.
"""

from __future__ import annotations

import re

from tests.deploy import synthetic_protos
from tests.e2e import gateway_stack

gateway = gateway_stack.gateway_module()


def test_a_map_of_messages_is_checked_through_its_value_type_and_other_maps_are_not():
    fds = synthetic_protos.descriptor_set()
    (binding,) = gateway.body_bindings(fds)
    assert (binding.body_type, binding.binding.method, binding.binding.template) == (
        "synthetic.v1.Thing",
        "PUT",
        "/v1/things/{id}",
    )
    messages = gateway.body_message_fields(fds, [binding])

    thing = messages["synthetic.v1.Thing"]
    # Values of `parts` are checked as Part; both spellings of each field are keys.
    assert thing["parts"] == {"map": "synthetic.v1.Part"}
    # Scalar values and google.* values (Struct takes any object) are the transcoder's.
    assert thing["labels"] is None and thing["extras"] is None
    assert thing["id"] is None
    # A message reached only through a map's values is listed, and so are its own maps.
    assert messages["synthetic.v1.Part"] == {
        "part_name": None,
        "partName": None,
        "detail": "synthetic.v1.Detail",
        "more": {"map": "synthetic.v1.Detail"},
    }
    assert messages["synthetic.v1.Detail"] == {"size": None}
    # Map entries and google.* messages are never tables of their own.
    assert set(messages) == {"synthetic.v1.Thing", "synthetic.v1.Part", "synthetic.v1.Detail"}


def test_the_rendered_lua_names_the_value_type_of_a_map_of_messages(tmp_path):
    descriptor = synthetic_protos.write_descriptor_set(tmp_path / "synthetic.binpb")
    lua = gateway.body_field_check(descriptor)
    rows = dict(re.findall(r'^  \["([\w.]+)"\] = \{(.*)\},$', lua, flags=re.MULTILINE))
    assert '["parts"] = {map = "synthetic.v1.Part"}' in rows["synthetic.v1.Thing"]
    assert '["labels"] = false' in rows["synthetic.v1.Thing"]
    assert '["extras"] = false' in rows["synthetic.v1.Thing"]
    assert '["more"] = {map = "synthetic.v1.Detail"}' in rows["synthetic.v1.Part"]
    assert 'body = "synthetic.v1.Thing"' in lua.split("ROUTES = {", 1)[1].split("\n}", 1)[0]
