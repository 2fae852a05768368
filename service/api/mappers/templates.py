"""Template: the use cases' view <-> ``simulation.v1.Template``."""

from __future__ import annotations

from simulation.v1 import template_pb2

from service.api.proto_values import timestamp
from service.app.templates import TemplateInput, TemplateView


def template_to_proto(view: TemplateView) -> template_pb2.Template:
    """The API form of a template (or preset) at the view's revision."""
    record = view.template
    message = template_pb2.Template(
        id=record.id,
        display_name=record.display_name,
        description=record.description,
        labels=record.labels,
        config=view.config,
        revision=view.revision.revision,
        builtin=view.builtin,
        create_time=timestamp(record.create_time),
        update_time=timestamp(record.update_time),
        delete_time=timestamp(record.delete_time),
        purge_time=timestamp(record.purge_time),
        etag=record.etag,
    )
    parameters = view.parameters
    if parameters is not None:
        message.parameters.CopyFrom(parameters)
    return message


def template_input(message: template_pb2.Template) -> TemplateInput:
    """The caller-writable fields a request's template carries (unset messages as None)."""
    return TemplateInput(
        display_name=message.display_name,
        description=message.description,
        labels=dict(message.labels),
        config=message.config if message.HasField("config") else None,
        parameters=message.parameters if message.HasField("parameters") else None,
    )
