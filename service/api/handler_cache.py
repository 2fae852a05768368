"""Each interceptor's wrapping of a method's handler, made once per method instead of per call.

gRPC asks every interceptor for a call's handler on every call, and finds the same handler
object for a method each time. An interceptor whose wrapping depends on nothing of the call
(whatever it needs of the call it reads when the call runs) can therefore hand out the same
wrapped handler every time: building one costs closures and a new handler per call.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc


class HandlerCache:
    """``wrap(method, handler)`` remembered per method, while the inner handler stays the same.

    A handler made for one call only (a refusal, say) is wrapped anew and replaces what was
    remembered, so there is never more than one entry per method.
    """

    def __init__(self, wrap: Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]):
        self._wrap = wrap
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def get(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The wrapping of ``handler``, the handler of ``method``."""
        remembered = self._wrapped.get(method)
        if remembered is not None and remembered[0] is handler:
            return remembered[1]
        # Two threads may both build one: either result is right, and the dict stays whole.
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped
