"""``Client``: one object for every RPC of the service, over one address.

What it does on every call: sends the API key (``x-api-key``), applies a default deadline,
fills in a ``request_id`` on every write that takes one — creates, updates, deletes, run
transitions (so a retried write is answered from the first one, not made twice, AIP-155) —,
decodes a failure into a :mod:`simconfig_client.errors` exception, and retries
``UNAVAILABLE`` per a gRPC service config when the call is safe to repeat: reads, and writes
that carry a ``request_id`` or an ``etag`` (a repeated conditional write fails with
``ABORTED`` instead of applying twice). Other writes are sent once, on a channel without
retries: a write whose connection broke may have been applied.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message

from simconfig_client import errors
from simconfig_client._methods import SERVICES, GeneratedMethods

API_KEY_HEADER = "x-api-key"
_NO_SIDE_EFFECTS = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS


@dataclass(frozen=True)
class RetryPolicy:
    """How the channel retries ``UNAVAILABLE`` (gRPC retry policy, gRFC A6).

    gRPC waits ``initial_backoff * backoff_multiplier ** (n - 1)`` seconds (at most
    ``max_backoff``, with jitter) before attempt ``n + 1``; it caps ``max_attempts`` at 5. The
    defaults ride out about 7 seconds of outage, such as a server restart, within the call's
    deadline.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 5.0
    backoff_multiplier: float = 2.0

    def service_config(self) -> str:
        """The gRPC service config (JSON) applying this policy to every public method."""
        return json.dumps(
            {
                "methodConfig": [
                    {
                        "name": [{"service": service} for service in SERVICES],
                        "retryPolicy": {
                            "maxAttempts": self.max_attempts,
                            "initialBackoff": f"{self.initial_backoff}s",
                            "maxBackoff": f"{self.max_backoff}s",
                            "backoffMultiplier": self.backoff_multiplier,
                            "retryableStatusCodes": ["UNAVAILABLE"],
                        },
                    }
                ]
            }
        )


def is_retry_safe(method_path: str, request: message.Message) -> bool:
    """True when sending ``request`` twice cannot apply it twice.

    Reads (``idempotency_level = NO_SIDE_EFFECTS`` in the protos) and writes carrying a
    ``request_id`` or a non-empty ``etag``, at the top level or in the resource they carry
    (``scenario.etag`` of UpdateScenario).
    """
    method = _method(method_path)
    if method.GetOptions().idempotency_level == _NO_SIDE_EFFECTS:
        return True
    fields = request.DESCRIPTOR.fields_by_name
    if "request_id" in fields and request.request_id:
        return True
    if "etag" in fields and request.etag:
        return True
    for field in request.DESCRIPTOR.fields:
        if (
            field.message_type is not None
            and not field.is_repeated
            and "etag" in field.message_type.fields_by_name
            and request.HasField(field.name)
            and getattr(request, field.name).etag
        ):
            return True
    return False


def _method(path: str):
    service, name = path.strip("/").split("/")
    return descriptor_pool.Default().FindMethodByName(f"{service}.{name}")


class Client(GeneratedMethods):
    """A client of the Simulation Config Service.

    ``Client("host:50051", api_key)`` connects in plaintext; ``tls=True`` uses the system's
    root certificates, or pass ``grpc.ssl_channel_credentials(...)`` for your own (mutual TLS
    included). ``timeout`` is the default deadline of a call in seconds (a method's own
    ``timeout=`` overrides it); retries happen within it. ``retry=None`` turns retries off.
    Every RPC is a method named after it (``create_scenario``), taking a request message or its
    fields as keyword arguments and returning the response message; ``iter_scenarios`` and its
    siblings walk every page of a List RPC. Failures raise
    :class:`simconfig_client.errors.SimconfigError` subclasses. Use it as a context manager,
    or call :meth:`close`. It is safe to share between threads.
    """

    def __init__(
        self,
        address: str,
        api_key: str,
        *,
        tls: bool | grpc.ChannelCredentials = False,
        timeout: float = 30.0,
        retry: RetryPolicy | None = RetryPolicy(),  # noqa: B008 - frozen, so shared safely
        options: Sequence[tuple[str, Any]] = (),
    ):
        if not api_key:
            raise ValueError("api_key is required: every call needs one")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.address = address
        self.timeout = timeout
        self._metadata = ((API_KEY_HEADER, api_key),)
        # After an outage the channel reconnects within 2 s rather than gRPC's default of up
        # to 2 minutes, so a retried call finds the restarted server.
        common = [("grpc.max_reconnect_backoff_ms", 2000), *options]
        self._once = self._channel(address, tls, [("grpc.enable_retries", 0), *common])
        self._retrying = (
            self._channel(
                address,
                tls,
                [
                    ("grpc.enable_retries", 1),
                    ("grpc.service_config", retry.service_config()),
                    *common,
                ],
            )
            if retry is not None
            else self._once
        )
        self._callables: dict[tuple[int, str], Any] = {}

    @staticmethod
    def _channel(address: str, tls: bool | grpc.ChannelCredentials, options) -> grpc.Channel:
        if tls is False:
            return grpc.insecure_channel(address, options=options)
        credentials = grpc.ssl_channel_credentials() if tls is True else tls
        return grpc.secure_channel(address, credentials, options=options)

    def close(self) -> None:
        """Closes the channels; calls in flight are cancelled."""
        self._retrying.close()
        if self._once is not self._retrying:
            self._once.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _request(self, request, fields: Mapping[str, Any], request_type):
        if request is not None and fields:
            raise TypeError("pass a request message or keyword fields, not both")
        if request is None:
            # Nested messages may be given as dicts, as protobuf's own constructors accept.
            return request_type(**fields)
        # A copy: filling in the request id must not change the caller's message.
        built = request_type()
        built.CopyFrom(request)
        return built

    def _prepared(self, path: str, request, fields, request_type):
        prepared = self._request(request, fields, request_type)
        if "request_id" in prepared.DESCRIPTOR.fields_by_name and not prepared.request_id:
            prepared.request_id = str(uuid.uuid4())
        channel = self._retrying if is_retry_safe(path, prepared) else self._once
        return prepared, channel

    def _callable(self, channel: grpc.Channel, path: str, streaming: bool, types):
        key = (id(channel), path)
        found = self._callables.get(key)
        if found is None:
            request_type, response_type = types
            factory = channel.unary_stream if streaming else channel.unary_unary
            found = factory(
                path,
                request_serializer=request_type.SerializeToString,
                response_deserializer=response_type.FromString,
            )
            self._callables[key] = found
        return found

    def _unary(self, path, request, fields, timeout, request_type, response_type):
        prepared, channel = self._prepared(path, request, fields, request_type)
        call = self._callable(channel, path, False, (request_type, response_type))
        try:
            return call(
                prepared,
                timeout=self.timeout if timeout is None else timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as error:
            raise errors.from_rpc_error(error) from None

    def _stream(self, path, request, fields, timeout, request_type, response_type) -> Iterator:
        prepared, channel = self._prepared(path, request, fields, request_type)
        call = self._callable(channel, path, True, (request_type, response_type))
        responses = call(
            prepared,
            timeout=self.timeout if timeout is None else timeout,
            metadata=self._metadata,
        )
        try:
            yield from responses
        except grpc.RpcError as error:
            raise errors.from_rpc_error(error) from None
        finally:
            responses.cancel()
