"""What the signals routes get through FastAPI's ``Depends``: the service's typed context
(settings, pool, key holder) and who calls (a partner by its
key, or a privacy officer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, HTTPException, Request, status

from services.signals.config import SignalsSettings
from services.signals.domain import Organisation, Requester
from services.signals.keys import KeyHolder
from services.signals.metrics import PipelineMetrics
from services.signals.service import SignalsUnitOfWork
from shared.access_log import Actor
from shared.auth import Credential, Scope, bearer_credential
from shared.context import ServiceContext, app_context
from shared.crypto import MasterKeyring
from shared.service import Runtime


@dataclass(frozen=True)
class SignalsContext(ServiceContext[SignalsSettings]):
    """One per process: made by ``api.create_app``, kept on ``app.state.context``."""

    keys: KeyHolder

    @classmethod
    def create(cls, settings: SignalsSettings, runtime: Runtime[SignalsSettings]) -> SignalsContext:
        """The context of one process. Consumed sealed events are opened with this service's
        own keys (the key holder), not fetched over HTTP like the other services do."""
        keyring = MasterKeyring.parse(settings.encryption_master_keys.get_secret_value())
        runtime.keys = keys = KeyHolder(keyring, lambda: runtime.pool)
        runtime.metric_refreshers.append(PipelineMetrics(runtime.metrics.registry).refresh)
        return cls(settings, runtime, keys)

    @property
    def keyring(self) -> MasterKeyring:
        return self.keys.keyring


def context_of(request: Request) -> SignalsContext:
    return app_context(request, SignalsContext)


Context = Annotated[SignalsContext, Depends(context_of)]


async def organisation_of(context: SignalsContext, credential: Credential) -> Organisation:
    async with SignalsUnitOfWork.begin(context.pool) as uow:
        organisation = await uow.signals.organisation(UUID(credential.subject))
    if organisation is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this API key's organisation no longer exists",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return organisation


@dataclass(frozen=True)
class Partner:
    """The organisation a partner key belongs to, and how the access log names the caller."""

    organisation: Organisation
    actor: Actor


def partner(scope: Scope) -> Any:
    """The partner whose key holds ``scope``."""
    credential = bearer_credential(scope, scheme_name="PartnerKey", what="partner API key")

    # A default, not Annotated: the annotation would be resolved by name, and ``credential`` is local.
    async def caller(context: Context, found: Credential = Depends(credential)) -> Partner:
        organisation = await organisation_of(context, found)
        return Partner(organisation, Actor("partner", f"key:{found.id}", str(organisation.id)))

    return Depends(caller)


erasure_credential = bearer_credential(
    Scope.ERASE_OWN,
    Scope.PRIVACY_OFFICER,
    scheme_name="PartnerKey",
    what="partner API key or privacy officer's credential",
)


async def authenticate_erasure(
    context: Context,
    credential: Annotated[Credential, Depends(erasure_credential)],
) -> Requester:
    """A partner key (its own signals) or a privacy officer's credential (the person)."""
    if Scope.PRIVACY_OFFICER in credential.scopes:
        return Requester(UUID(credential.subject), credential.holder, "privacy_officer")
    organisation = await organisation_of(context, credential)
    return Requester(organisation.id, organisation.name, "partner")


async def erasure_actor(
    requester: Annotated[Requester, Depends(authenticate_erasure)],
    credential: Annotated[Credential, Depends(erasure_credential)],
) -> Actor:
    """The access log's name for the requester: a privacy officer acts for the controller."""
    if requester.role == "privacy_officer":
        return Actor("privacy_officer", str(requester.id), on_behalf_of="controller")
    return Actor("partner", f"key:{credential.id}", str(requester.id))


# The requester of an erasure, and how the access log names it.
ErasureRequester = Annotated[Requester, Depends(authenticate_erasure)]
ErasureActor = Annotated[Actor, Depends(erasure_actor)]
