import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from tests.conftest import locked_briefly
from usage import (
    MIGRATIONS,
    Migration,
    ModelStats,
    UsageRow,
    UsageStore,
    UsageStoreError,
    applied_migrations,
    apply_migrations,
)

LOCAL = "qwen2.5-coder:7b"
CLOUD = "gemini-2.5-flash"


def make_row(**overrides: Any) -> UsageRow:
    base: dict[str, Any] = {
        "thread_id": "t-1",
        "task_type": "code",
        "model": LOCAL,
        "provider": "ollama",
        "location": "local",
        "status": "success",
        "fallback_reason": None,
        "local_model": LOCAL,
        "load_time_s": 0.5,
        "first_token_s": 0.8,
        "generation_time_s": 2.0,
        "input_tokens": 100,
        "output_tokens": 50,
        "validation": "valid",
        "validation_error": None,
        "attempts": 1,
        "error_message": None,
    }
    return UsageRow(**{**base, **overrides})


def raw(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read with an independent connection, as another process would."""
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def columns(path: Path) -> set[str]:
    return {row[1] for row in raw(path, "PRAGMA table_info(requests)")}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "usage.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[UsageStore]:
    with UsageStore(db_path) as opened:
        yield opened


def test_migrations_create_schema_and_record_themselves(store: UsageStore, db_path: Path) -> None:
    assert columns(db_path) == {"id"} | {f.name for f in fields(UsageRow)}
    indexes = {row[1] for row in raw(db_path, "PRAGMA index_list(requests)")}
    assert {"idx_requests_model", "idx_requests_created_at"} <= indexes
    first, second = raw(db_path, "SELECT id, name, applied_at FROM _migrations ORDER BY id")
    assert (first[:2], second[:2]) == ((1, "create_requests"), (2, "add_model_outcomes"))
    assert first[2].startswith("20") and first[2].endswith("+00:00")


def test_reopen_does_not_reapply(db_path: Path) -> None:
    UsageStore(db_path).close()
    first = raw(db_path, "SELECT * FROM _migrations")
    with UsageStore(db_path) as store:
        store.record_sync(make_row())
    with closing(Database(db_path)) as db:
        assert apply_migrations(db) == []
        assert applied_migrations(db) == [1, 2]
    assert raw(db_path, "SELECT * FROM _migrations") == first


def _add_cost(db: Database) -> None:
    db.table("requests").add_column("cost_usd", float)


def test_later_migration_adds_column_and_keeps_rows(db_path: Path) -> None:
    with UsageStore(db_path) as store:
        store.record_sync(make_row(thread_id="old-1"))
        store.record_sync(make_row(thread_id="old-2"))
    later = [*MIGRATIONS, Migration(3, "add_cost", _add_cost)]
    with UsageStore(db_path, migrations=later) as store:
        assert store.count() == 2
        assert [row["thread_id"] for row in store.recent()] == ["old-2", "old-1"]
        assert store.recent(1)[0]["cost_usd"] is None
    assert "cost_usd" in columns(db_path)
    assert [row[:2] for row in raw(db_path, "SELECT id, name FROM _migrations ORDER BY id")] == [
        (1, "create_requests"),
        (2, "add_model_outcomes"),
        (3, "add_cost"),
    ]
    # An older build (without migration 3) must refuse the newer file.
    with pytest.raises(UsageStoreError, match=r"migrations \[3\] this version does not know"):
        UsageStore(db_path)


def test_failing_migration_leaves_schema_untouched(db_path: Path) -> None:
    UsageStore(db_path).close()

    def broken(db: Database) -> None:
        _add_cost(db)
        raise RuntimeError("half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        UsageStore(db_path, migrations=[*MIGRATIONS, Migration(3, "broken", broken)])
    assert "cost_usd" not in columns(db_path)
    assert raw(db_path, "SELECT id FROM _migrations ORDER BY id") == [(1,), (2,)]


def test_migration_ids_must_be_sequential(db_path: Path) -> None:
    with pytest.raises(ValueError, match="1..n"):
        UsageStore(db_path, migrations=[*MIGRATIONS, Migration(4, "gap", _add_cost)])


async def test_record_and_record_sync(store: UsageStore) -> None:
    first = store.record_sync(make_row(thread_id="a"))
    second = await store.record(
        make_row(thread_id="b", status="failed", fallback_reason="timeout", validation=None)
    )
    assert (first, second) == (1, 2)
    assert store.count() == 2
    newest = store.recent()[0]
    assert newest["id"] == 2
    assert newest["status"] == "failed"
    assert newest["fallback_reason"] == "timeout"
    assert newest["validation"] is None
    assert newest["generation_time_s"] == 2.0
    assert isinstance(newest["created_at"], str) and newest["created_at"].endswith("+00:00")


def test_dashboard_credits_each_model_by_its_own_outcome(store: UsageStore) -> None:
    local: dict[str, Any] = {"local_model": LOCAL}
    cloud: dict[str, Any] = {"model": CLOUD, "provider": "gemini", "location": "cloud", "local_model": LOCAL}
    cloud |= {"cloud_model": CLOUD, "cloud_provider": "gemini", "cloud_attempts": 1}
    rows = [
        make_row(**local, local_outcome="valid", generation_time_s=2.0, input_tokens=100, output_tokens=50),
        make_row(
            **local, local_outcome="repaired", generation_time_s=4.0, input_tokens=200, output_tokens=100
        ),
        make_row(
            **local,
            status="invalid",
            local_outcome="invalid",
            fallback_reason="invalid_output",
            validation="invalid",
            validation_error="bad",
            generation_time_s=3.0,
            input_tokens=10,
            output_tokens=None,
        ),
        # Force local: nothing fell back, so no fallback is counted.
        make_row(
            **local,
            status="failed",
            local_outcome="failed",
            fallback_reason="server_down",
            validation=None,
            generation_time_s=None,
            input_tokens=None,
            output_tokens=None,
            created_at="2030-01-01T00:00:00.000+00:00",
        ),
        # The local model timed out; the cloud answered (its tokens are its own share).
        make_row(
            **cloud,
            local_outcome="failed",
            fallback_reason="timeout",
            generation_time_s=10.0,
            input_tokens=1000,
            output_tokens=500,
            cloud_input_tokens=1000,
            cloud_output_tokens=500,
        ),
        # Two invalid local replies (first + repair), then the cloud: the local model failed.
        make_row(
            **cloud,
            local_outcome="invalid",
            fallback_reason="invalid_output",
            generation_time_s=5.0,
            input_tokens=700,
            output_tokens=350,
            cloud_input_tokens=500,
            cloud_output_tokens=250,
            created_at="2031-01-01T00:00:00.000+00:00",
        ),
        make_row(
            **local, status="interrupted", local_outcome=None, generation_time_s=None, input_tokens=None
        ),
    ]
    for row in rows:
        store.record_sync(row)

    local_stats, cloud_stats = store.dashboard()
    assert local_stats == ModelStats(
        model=LOCAL,
        provider="ollama",
        location="local",
        total=7,
        successes=2,
        invalid=2,
        failures=2,
        fallbacks=2,
        success_rate=2 / 7,
        fallback_rate=2 / 7,
        avg_time_s=4.8,
        input_tokens=100 + 200 + 10 + 200,
        output_tokens=50 + 100 + 100 + 50,
        last_used="2031-01-01T00:00:00.000+00:00",
        repaired=1,
        unchecked=0,
        interrupted=1,
    )
    assert cloud_stats.to_dict() == {
        "model": CLOUD,
        "provider": "gemini",
        "location": "cloud",
        "total": 2,
        "successes": 2,
        "invalid": 0,
        "failures": 0,
        "fallbacks": 2,
        "success_rate": 1.0,
        "fallback_rate": 1.0,
        "avg_time_s": 7.5,
        "input_tokens": 1500,
        "output_tokens": 750,
        "last_used": "2031-01-01T00:00:00.000+00:00",
        "repaired": 0,
        "unchecked": 0,
        "interrupted": 0,
    }


def test_dashboard_edge_cases(store: UsageStore) -> None:
    assert store.dashboard() == []
    store.record_sync(
        make_row(local_outcome="valid", generation_time_s=None, input_tokens=None, output_tokens=None)
    )
    store.record_sync(make_row(status="unchecked", local_outcome="unchecked", generation_time_s=None))
    for provider in ("openai", "other"):
        store.record_sync(
            make_row(
                location="cloud",
                cloud_model="m",
                cloud_provider=provider,
                cloud_attempts=1,
                cloud_input_tokens=100,
                cloud_output_tokens=50,
            )
        )
    by_model = {s.model: s for s in store.dashboard()}
    local, cloud = by_model[LOCAL], by_model["m"]
    assert local.avg_time_s == 2.0 and local.unchecked == 1 and local.successes == 1  # unchecked != success
    assert (local.input_tokens, local.output_tokens) == (100, 50)
    assert (cloud.input_tokens, cloud.output_tokens) == (200, 100)
    assert local.fallback_rate == 0.5
    assert (cloud.provider, cloud.location, cloud.total) == ("mixed", "cloud", 2)


def test_migration_2_credits_older_rows_to_both_models(db_path: Path) -> None:
    """Rows written before migration 2 (seed schema) are backfilled, never left uncounted."""
    with UsageStore(db_path, migrations=MIGRATIONS[:1]) as old:
        seed_fields = {"created_at"} | {c for c in columns(db_path)}
        for overrides in (
            {},
            {"model": CLOUD, "provider": "gemini", "location": "cloud", "fallback_reason": "invalid_output"},
        ):
            values = {k: v for k, v in make_row(**overrides).to_dict().items() if k in seed_fields}
            Database(old._db.conn).table("requests").insert(values)
    with UsageStore(db_path) as store:
        local, cloud = store.dashboard()
    assert (local.model, local.total, local.successes, local.invalid, local.fallbacks) == (LOCAL, 2, 1, 1, 1)
    assert (cloud.model, cloud.total, cloud.input_tokens) == (CLOUD, 1, 100)
    assert local.input_tokens == 100


async def test_start_then_finish_keeps_one_row_per_request(store: UsageStore) -> None:
    started = await store.record(
        make_row(status="interrupted", local_outcome=None, created_at="2030-01-01T00:00")
    )
    done = await store.finish(started, make_row(local_outcome="valid"))
    assert done == started and store.count() == 1
    (row,) = store.recent()
    assert (row["status"], row["local_outcome"], row["created_at"]) == (
        "success",
        "valid",
        "2030-01-01T00:00",
    )
    # Without a start (it could not be written) or with its row gone, finishing inserts the row.
    assert await store.finish(None, make_row()) == 2
    assert await store.finish(99, make_row()) == 3
    assert store.count() == 3


def test_error_texts_are_scrubbed_of_secrets_before_they_are_stored(db_path: Path) -> None:
    key = "sk-usage-test-0123456789abcdefSECRET"
    with UsageStore(db_path, secrets=[key, "short"]) as store:
        first = store.record_sync(make_row(error_message=f"crash: Bearer {key}", validation_error=key[:18]))
        store.finish_sync(first, make_row(error_message=f"boom {key}", validation_error="short words"))
        store.record_sync(make_row(error_message=f"half {key[: len(key) // 2]}"))
    assert key[: len(key) // 2].encode() not in db_path.read_bytes()
    for path in db_path.parent.glob("usage.db*"):
        assert key[: len(key) // 2].encode() not in path.read_bytes()
    messages = [r[0] for r in raw(db_path, "SELECT error_message FROM requests ORDER BY id")]
    assert messages == ["boom [redacted]", "half [redacted]"]
    assert raw(db_path, "SELECT validation_error FROM requests WHERE id = 1") == [("short words",)]


def test_wal_mode_is_on(store: UsageStore, db_path: Path) -> None:
    assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]


async def test_concurrent_records_all_land(store: UsageStore) -> None:
    rows = [make_row(thread_id=f"t-{i}") for i in range(50)]
    ids = await asyncio.gather(*(store.record(row) for row in rows))
    assert sorted(ids) == list(range(1, 51))
    assert store.count() == 50
    assert {row["thread_id"] for row in store.recent(100)} == {f"t-{i}" for i in range(50)}


async def test_a_write_that_finds_the_file_locked_waits_in_a_thread_not_on_the_loop(
    store: UsageStore, db_path: Path
) -> None:
    # Writes run on the loop (UsageStore.soon) only while nothing can make them wait there.
    assert await store.record(make_row(thread_id="before")) == 1
    async with locked_briefly(db_path, 0.6) as gaps:  # less than the busy timeout
        started = time.monotonic()
        row_id = await store.record(make_row(thread_id="waited"))
        took = time.monotonic() - started
    assert row_id == 2 and took >= 0.5
    assert gaps and max(gaps) < 0.25, gaps  # the loop ran all along
    assert [r["thread_id"] for r in store.recent()] == ["waited", "before"]
    assert await store.finish(row_id, make_row(thread_id="waited")) == 2  # busy timeout restored


def test_corrupt_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    garbage = b"this is definitely not sqlite\n" * 100
    path.write_bytes(garbage)
    with pytest.raises(UsageStoreError) as caught:
        UsageStore(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a usage database (file is not a database)")
    assert "MODELYARD_DATA_DIR" in message
    assert path.read_bytes() == garbage


def test_in_data_dir_creates_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    with UsageStore.in_data_dir(data_dir) as store:
        assert store.path == data_dir / "usage.db"
        store.record_sync(make_row())
    assert (data_dir / "usage.db").is_file()


async def test_closed_store_refuses_work(db_path: Path) -> None:
    store = UsageStore(db_path)
    store.close()
    store.close()
    with pytest.raises(UsageStoreError, match="closed"):
        store.record_sync(make_row())
    with pytest.raises(UsageStoreError, match="closed"):
        await store.record(make_row())
    with pytest.raises(UsageStoreError, match="closed"):
        store.dashboard()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {"status": "ok"},
            "status must be one of success, invalid, unchecked, failed, interrupted",
            id="status",
        ),
        pytest.param({"local_outcome": "meh"}, "local_outcome must be one of valid, repaired", id="outcome"),
        pytest.param({"cloud_attempts": -1}, "cloud_attempts must be >= 0", id="cloud_attempts"),
        pytest.param({"location": "edge"}, "location must be one of local, cloud", id="location"),
        pytest.param({"fallback_reason": "quota"}, "fallback_reason must be one of server_down", id="reason"),
        pytest.param({"validation": "maybe"}, "validation must be one of valid, invalid", id="validation"),
        pytest.param({"attempts": -1}, "attempts must be >= 0", id="attempts"),
    ],
)
def test_usage_row_rejects_values_outside_vocabulary(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_row(**overrides)


def test_usage_row_created_at_defaults_to_utc_now() -> None:
    row = make_row()
    assert row.created_at.endswith("+00:00")
    assert replace(row, created_at="x").created_at == "x"
