"""Tables of the model registry. Private to the registry's store and migrations.

Every registry entity (registered models, versions, artifacts, serving
environments, inference services, serve models, experiments and runs) is one
row: the columns are what lists sort, page and filter on; ``body`` holds the
entity as the API shows it (typed fields and ``customProperties``).

Names are unique per (namespace, scope, parent): a version name per registered
model, an artifact name per version, as upstream's ``<parentId>:<name>``
prefix makes them. ``parent_id`` is 0 for top-level entities, since NULLs
would not take part in the unique constraint.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

from ketch.core.store import SchemaBranch
from ketch.core.store.types import JsonType

metadata = MetaData()

entities = Table(
    "registry_entities",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(63), nullable=False),
    # RegisteredModel, ModelVersion, ModelArtifact, DocArtifact, DataSet, Metric,
    # Parameter, ServingEnvironment, InferenceService, ServeModel, Experiment, ExperimentRun
    Column("entity_type", String(32), nullable=False),
    # What names and externalIds are unique within: every artifact type shares "Artifact".
    Column("scope", String(32), nullable=False),
    Column("parent_id", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("external_id", String(255), nullable=True),
    Column("state", String(32), nullable=True),
    Column("create_ms", BigInteger, nullable=False),
    Column("update_ms", BigInteger, nullable=False),
    Column("body", JsonType, nullable=False),
    UniqueConstraint("namespace", "scope", "parent_id", "name", name="uq_registry_name"),
    UniqueConstraint("namespace", "scope", "external_id", name="uq_registry_external_id"),
    Index("ix_registry_type_parent", "namespace", "entity_type", "parent_id"),
    # Ids are never reused after a delete (a stale reference must not find a newcomer).
    sqlite_autoincrement=True,
)

# The registry's tables with their migration history (the component declares it by
# reference, so reading the declaration does not import SQLAlchemy).
SCHEMA = SchemaBranch("registry", Path(__file__).parent / "migrations", head="registry_0001",
                      known=("registry_0001",), metadata=metadata)
