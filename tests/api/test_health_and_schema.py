from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from api.main import create_app
from api.models import Base


def test_health_answers_without_a_token() -> None:
    client = TestClient(create_app())
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_route_gets_a_coded_error() -> None:
    response = TestClient(create_app()).get("/nowhere")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_migrations_create_every_table_of_the_models(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
