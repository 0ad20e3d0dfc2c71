"""Encrypted stores keep no plaintext: each backend's raw bytes are read and searched."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import redis
import sqlalchemy as sa
from redis.cluster import ClusterNode, RedisCluster

import ailib
from ailib.encryption import generate_key
from ailib.stores.memory import MemoryStore
from ailib.url import make_url

SECRETS = ("tangerine", "launch code", "alice@example.com", "Project Falcon")


def raw_dump(name: str, url: str, store: ailib.BaseStore) -> str:
    """Everything the backend holds for the store's namespace, as text."""
    parsed = make_url(url)
    namespace = store.namespace
    if name == "memory":
        assert isinstance(store, MemoryStore)
        return json.dumps([r.to_json() for r in store._space.records.values()])
    if name in ("sqlite", "postgresql", "mariadb"):
        engine = sa.create_engine(parsed.without_query(parsed.query).render(hide_password=False))
        rows: list[Any] = []
        with engine.connect() as connection:
            for table_name in sa.inspect(connection).get_table_names():
                if not table_name.startswith("ailib_"):
                    continue
                table = sa.Table(table_name, sa.MetaData(), autoload_with=connection)
                query = sa.select(table)
                if "namespace" in table.c:
                    query = query.where(table.c.namespace == namespace)
                rows += [tuple(row) for row in connection.execute(query)]
        engine.dispose()
        assert rows, "the raw read found nothing: it is not reading where the store writes"
        return repr(rows)
    if name in ("redis", "redis-cluster"):
        if name == "redis":
            db = int(parsed.path.strip("/") or 0)
            client: Any = redis.Redis(parsed.host or "127.0.0.1", parsed.port or 6379, db=db)
        else:
            client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in parsed.hosts])
        chunks: list[str] = []
        for key in client.scan_iter(f"ailib:{{{namespace}*"):
            kind = client.type(key).decode()
            value = {
                "string": lambda k: client.get(k),
                "hash": lambda k: client.hgetall(k),
                "list": lambda k: client.lrange(k, 0, -1),
                "zset": lambda k: client.zrange(k, 0, -1),
                "set": lambda k: client.smembers(k),
            }[kind](key)
            chunks.append(repr((key, value)))
        client.close()
        assert chunks, "the raw read found nothing: it is not reading where the store writes"
        return "\n".join(chunks)
    endpoint = parsed.query["endpoint_url"]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = parsed.host or ""
    bodies = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            if f"/{namespace}/" in "/" + item["Key"]:
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                bodies.append(item["Key"] + " " + body.decode("utf-8", "replace"))
    assert bodies, "the raw read found nothing: it is not reading where the store writes"
    return "\n".join(bodies)


def test_no_plaintext_at_rest(backend: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    name, url = backend
    monkeypatch.setenv("AILIB_TEST_KEY", generate_key())
    with ailib.open_store(url + "&encrypt=env:AILIB_TEST_KEY") as store:
        session = store.create({"user_id": "alice@example.com", "project": "Project Falcon"})
        session.add_message("user", "The launch code is tangerine.")
        session.add_message("assistant", "Noted: tangerine.")
        store.checkpoint(session.session_id, label="first")  # labels are not sealed
        store.memory("alice@example.com").add_fact("knows the launch code: tangerine")
        raw = raw_dump(name, url, store)
        for secret in SECRETS:
            assert secret not in raw, f"{secret!r} is stored in clear on {name}"
        loaded = store.load(session.session_id)
        assert loaded.messages[0]["content"] == "The launch code is tangerine."
        assert [s.session_id for s in store.list(user_id="alice@example.com")] == [
            session.session_id
        ]
        assert store.memory("alice@example.com").facts == ["knows the launch code: tangerine"]
        assert store.forget_user("alice@example.com") == 2
