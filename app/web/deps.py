"""What routes depend on: the process's services and a database session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    """One session for the request: committed when the route returns, rolled back when it raises."""
    with services.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
