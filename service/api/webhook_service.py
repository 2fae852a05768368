"""WebhookService: proto requests in, use cases called, proto responses out."""

from __future__ import annotations

from simulation.v1 import webhook_service_pb2 as pb
from simulation.v1 import webhook_service_pb2_grpc

from service.api.interceptors import current_principal
from service.api.mappers.webhooks import delivery_to_proto, webhook_input, webhook_to_proto
from service.app.webhooks import WebhookOperations


class WebhookServicer(webhook_service_pb2_grpc.WebhookServiceServicer):
    """Implements ``simulation.v1.WebhookService``; errors are mapped by the ErrorInterceptor."""

    def __init__(self, operations: WebhookOperations):
        self._ops = operations

    def CreateWebhook(self, request, context):
        webhook, secret = self._ops.create(
            current_principal(), webhook_input(request.webhook), request_id=request.request_id
        )
        return pb.CreateWebhookResponse(webhook=webhook_to_proto(webhook), secret=secret)

    def GetWebhook(self, request, context):
        webhook = self._ops.get(current_principal(), request.webhook_id)
        return pb.GetWebhookResponse(webhook=webhook_to_proto(webhook))

    def ListWebhooks(self, request, context):
        page = self._ops.list(
            current_principal(), page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListWebhooksResponse(
            webhooks=[webhook_to_proto(webhook) for webhook in page.items],
            next_page_token=page.next_page_token,
        )

    def UpdateWebhook(self, request, context):
        webhook = self._ops.update(
            current_principal(),
            request.webhook.id,
            webhook_input(request.webhook),
            mask=list(request.update_mask.paths),
            etag=request.webhook.etag,
            request_id=request.request_id,
        )
        return pb.UpdateWebhookResponse(webhook=webhook_to_proto(webhook))

    def DeleteWebhook(self, request, context):
        self._ops.delete(
            current_principal(),
            request.webhook_id,
            etag=request.etag,
            request_id=request.request_id,
        )
        return pb.DeleteWebhookResponse()

    def RotateWebhookSecret(self, request, context):
        webhook, secret = self._ops.rotate_secret(
            current_principal(),
            request.webhook_id,
            etag=request.etag,
            request_id=request.request_id,
        )
        return pb.RotateWebhookSecretResponse(webhook=webhook_to_proto(webhook), secret=secret)

    def ListWebhookDeliveries(self, request, context):
        page = self._ops.list_deliveries(
            current_principal(),
            request.webhook_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListWebhookDeliveriesResponse(
            deliveries=[delivery_to_proto(delivery) for delivery in page.items],
            next_page_token=page.next_page_token,
        )

    def RedeliverWebhook(self, request, context):
        delivery = self._ops.redeliver(
            current_principal(),
            request.webhook_id,
            request.delivery_id,
            request_id=request.request_id,
        )
        return pb.RedeliverWebhookResponse(delivery=delivery_to_proto(delivery))
