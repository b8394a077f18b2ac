"""The usage table on a real PostgreSQL: same schema, migrations and numbers as on SQLite."""

from __future__ import annotations

import random
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from config.database_url import parse_database_url
from config.loader import load_config
from config.schema import QualityConfig
from database.connect import connect
from database.errors import DatabaseUnavailableError
from database.migrate import apply_locked
from tests.postgres import PASSWORD, PostgresServer
from usage import MIGRATIONS, UsageRow, UsageStore, UsageStoreError
from usage.factory import open_usage_store
from usage.pg_migrations import LOCK_KEY, PG_MIGRATIONS
from usage.postgres_backend import PostgresBackend, translate

MODELS = ["mermaid-mistral", "Zeta-coder", "alpha:7b", "llama3:8b-instruct-q4_K_M", ""]
CLOUD = ["gpt-4o-mini", "gemini-2.5-flash"]
OUTCOMES = ["valid", "repaired", "invalid", "unchecked", "failed", None]


def pg_store(url: str, secrets: tuple[str, ...] = ()) -> UsageStore:
    return UsageStore.on(PostgresBackend(parse_database_url(url)), secrets=secrets)


def varied_rows(n: int, seed: int = 7) -> list[UsageRow]:
    """Every outcome, fallbacks answered or not, interrupted rows, NULL times and tokens."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        local = rnd.choice(MODELS)
        outcome = rnd.choice(OUTCOMES) if local else None
        fell_back = rnd.random() < 0.3
        cloud = rnd.choice(CLOUD) if fell_back and rnd.random() < 0.8 else None
        status = rnd.choice(["success", "invalid", "unchecked", "failed", "interrupted"])
        rows.append(
            UsageRow(
                thread_id=f"t-{i % 9}",
                task_type=rnd.choice(["erd", "mermaid", "code", "html"]),
                model=cloud or local,
                provider="openai" if cloud else "ollama",
                location="cloud" if cloud else "local",
                status=status,  # type: ignore[arg-type]
                fallback_reason=rnd.choice([None, "timeout", "invalid_output", "server_down"]),
                local_model=local or None,
                load_time_s=rnd.choice([None, 0.1, 0.7, 3.25, 12.5]),
                first_token_s=rnd.choice([None, 0.2]),
                generation_time_s=rnd.choice([None, 0.5, 1.25, 7.0 / 3]),
                input_tokens=rnd.choice([None, 10, 250]),
                output_tokens=rnd.choice([None, 5, 99]),
                validation=rnd.choice([None, "valid", "invalid"]),
                validation_error=None,
                attempts=rnd.randint(0, 3),
                error_message=None,
                local_outcome=outcome if status != "interrupted" else None,  # type: ignore[arg-type]
                cloud_model=cloud,
                cloud_provider=rnd.choice(["openai", "gemini"]) if cloud else None,
                cloud_attempts=(1 + rnd.randint(0, 1)) if fell_back else 0,
                cloud_input_tokens=rnd.choice([None, 7]) if cloud else None,
                cloud_output_tokens=rnd.choice([None, 3]) if cloud else None,
                created_at=f"2030-01-01T00:{i // 60:02d}:{i % 60:02d}.000+00:00",
            )
        )
    return rows


def pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode()).fetchall()


def test_the_same_rows_give_the_same_numbers_on_both_engines(pg_url: str, tmp_path: Path) -> None:
    rows = varied_rows(400)
    with UsageStore(tmp_path / "usage.db") as lite, pg_store(pg_url) as pg:
        for row in rows:
            assert lite.record_sync(row) == pg.record_sync(row)
        assert lite.count() == pg.count() == 400
        assert lite.dashboard() == pg.dashboard()
        assert len(lite.dashboard()) >= 6  # local and cloud lines, '(unknown)' included
        for window in (1, 5, 20, 1000):
            assert lite.quality(window) == pg.quality(window)
        settings = QualityConfig(window=10, min_requests=3, min_pass_rate=0.9)
        for model in MODELS[:-1]:
            assert lite.last_used(model) == pg.last_used(model)
            assert lite.load_times(model) == pg.load_times(model)
            for task in ("erd", "code"):
                assert lite.low_quality(model, task, settings) == pg.low_quality(model, task, settings)
        assert lite.request_counts() == pg.request_counts()
        assert lite.recent(30) == pg.recent(30)
        # Types as well as values: floats stay floats, counts ints (NUMERIC is read as float).
        first = pg.dashboard()[0]
        assert isinstance(first.success_rate, float) and isinstance(first.total, int)


def test_schema_and_migrations_match_sqlite(pg_url: str, tmp_path: Path) -> None:
    assert [(m.id, m.name) for m in PG_MIGRATIONS] == [(m.id, m.name) for m in MIGRATIONS]
    UsageStore(tmp_path / "usage.db").close()
    pg_store(pg_url).close()
    with closing(__import__("sqlite3").connect(tmp_path / "usage.db")) as lite:
        lite_columns = [r[1] for r in lite.execute("PRAGMA table_info(requests)")]
        lite_migrations = lite.execute("SELECT id, name FROM _migrations ORDER BY id").fetchall()
    pg_columns = pg_rows(
        pg_url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'requests' ORDER BY ordinal_position",
    )
    assert [c for (c,) in pg_columns] == lite_columns
    assert pg_rows(pg_url, "SELECT id, name FROM _migrations ORDER BY id") == lite_migrations


def test_migrations_from_concurrent_openers_are_recorded_once(pg_url: str) -> None:
    """Eight connections, already open, migrate an empty database at the same instant."""
    url = parse_database_url(pg_url)
    conns = [connect(url) for _ in range(8)]
    gate = threading.Barrier(len(conns))
    applied: list[list[int]] = []
    failures: list[BaseException] = []

    def migrate(conn: psycopg.Connection[Any]) -> None:
        try:
            gate.wait()
            applied.append(apply_locked(conn, PG_MIGRATIONS, table="_migrations", lock_key=LOCK_KEY))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=migrate, args=(conn,)) for conn in conns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for conn in conns:
        conn.close()
    assert failures == []
    assert sorted(applied) == [[]] * 7 + [[1, 2]]  # one opener applied both steps, the others none
    assert pg_rows(pg_url, "SELECT id, COUNT(*) FROM _migrations GROUP BY id ORDER BY id") == [(1, 1), (2, 1)]
    PostgresBackend(url).close()  # and a later opener finds nothing to do


def test_start_then_finish_is_one_row_and_secrets_are_scrubbed(pg_url: str) -> None:
    key = "sk-usage-test-0123456789abcdefSECRET"
    with pg_store(pg_url, secrets=(key, PASSWORD)) as store:
        started = store.record_sync(UsageRow.unmeasured("t", "erd", "m", "interrupted"))
        row = varied_rows(1)[0]
        done = store.finish_sync(
            started, UsageRow(**{**row.to_dict(), "error_message": f"boom {key} {PASSWORD}"})
        )
        assert done == started and store.count() == 1
        assert store.finish_sync(999, row) == 2  # its row gone: inserted, never lost
    dumped = repr(pg_rows(pg_url, "SELECT * FROM requests"))
    assert key[:10] not in dumped and PASSWORD[:10] not in dumped
    assert "boom [redacted] [redacted]" in dumped


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    pg_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(b"INSERT INTO _migrations (id, name, applied_at) VALUES (3, 'future', 'x')")
    with pytest.raises(UsageStoreError, match=r"migrations \[3\] this version does not know"):
        pg_store(pg_url)


def test_the_factory_picks_postgres_by_url_and_sqlite_without(pg_url: str, tmp_path: Path) -> None:
    env = {"MODELYARD_DATA_DIR": str(tmp_path / "data"), "MODELYARD_DATABASE_URL": pg_url}
    with open_usage_store(load_config(env=env)) as shared:
        assert shared.path is None and shared.where.startswith("PostgreSQL at 127.0.0.1:")
        shared.record_sync(varied_rows(1)[0])
    assert not (tmp_path / "data" / "usage.db").exists()
    with open_usage_store(load_config(env={"MODELYARD_DATA_DIR": str(tmp_path / "data")})) as local:
        assert local.path == tmp_path / "data" / "usage.db" and local.count() == 0


@pytest.mark.parametrize("problem", ["password", "port", "database"])
def test_an_unusable_url_fails_naming_the_variable_and_host_without_the_password(
    postgres: PostgresServer, problem: str
) -> None:
    url = {
        "password": postgres.url("postgres", password="wrong-password-0123456789"),
        "port": postgres.url("postgres", port=_closed_port()),
        "database": postgres.url("no_such_db"),
    }[problem]
    with pytest.raises(DatabaseUnavailableError) as caught:
        pg_store(url)
    message = str(caught.value)
    port = url.rsplit(":", 1)[1].split("/")[0]
    assert message.startswith(f"MODELYARD_DATABASE_URL: cannot use PostgreSQL at 127.0.0.1:{port}/")
    assert "wrong-password" not in message and PASSWORD[:8] not in message
    hint = {
        "password": "check the user name and password",
        "port": "listening on that port",
        "database": "createdb",
    }
    assert hint[problem] in message


def test_placeholders_are_translated() -> None:
    assert translate("a = ? AND b = :model AND c::text = 'x'") == "a = %s AND b = %(model)s AND c::text = 'x'"


def _closed_port() -> int:
    from tests.conftest import free_port

    return free_port()


def test_the_url_is_read_at_start_up_and_its_password_kept_out_of_reprs(pg_url: str) -> None:
    from config.database_url import secret_values
    from config.loader import ConfigError

    config = load_config(env={"MODELYARD_DATABASE_URL": pg_url})
    assert config.database_url == pg_url
    assert PASSWORD not in repr(config) and PASSWORD in secret_values(config)
    assert load_config(env={}).database_url is None
    for bad in ("mysql://u:p@h/db", "postgresql://u:p@/db", "postgresql://u:p@h:99999/db"):
        with pytest.raises(ConfigError, match="MODELYARD_DATABASE_URL") as caught:
            load_config(env={"MODELYARD_DATABASE_URL": bad.replace("u:p", f"u:{PASSWORD}")})
        assert PASSWORD not in str(caught.value)
