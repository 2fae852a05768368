"""SQL repositories, one per aggregate, all working on a unit of work's connection."""

from storage.repositories.api_keys import ApiKeyRepository
from storage.repositories.batch_requests import BatchRequestRepository
from storage.repositories.events import SimulationEventRepository
from storage.repositories.jobs import ArchitectJobRepository
from storage.repositories.periodic_runs import PeriodicRunRepository
from storage.repositories.revisions import ConfigRevisionRepository
from storage.repositories.scenarios import ScenarioRepository
from storage.repositories.service_secrets import ServiceSecretRepository
from storage.repositories.simulations import SimulationRepository
from storage.repositories.templates import TemplateRepository
from storage.repositories.tenants import TenantRepository
from storage.repositories.webhook_deliveries import WebhookDeliveryRepository
from storage.repositories.webhooks import WebhookRepository

__all__ = [
    "ApiKeyRepository",
    "ArchitectJobRepository",
    "BatchRequestRepository",
    "ConfigRevisionRepository",
    "PeriodicRunRepository",
    "ScenarioRepository",
    "ServiceSecretRepository",
    "SimulationEventRepository",
    "SimulationRepository",
    "TemplateRepository",
    "TenantRepository",
    "WebhookDeliveryRepository",
    "WebhookRepository",
]
