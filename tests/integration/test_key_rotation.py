"""The key holder's data keys in a real PostgreSQL, driven through the operator's CLI:
master-key rotation re-wraps them, and erased keys restored from a backup are shredded again."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import asyncpg

from deploy.stack import REPO
from services.signals import keys
from services.signals.api import MIGRATIONS
from shared.crypto import MasterKeyring
from shared.db import migrate


def _spec(key_id: str, key: bytes) -> str:
    return f"{key_id}:{base64.b64encode(key).decode()}"


def _cli(database_url: str, master_keys: str, *args: str) -> str:
    env = {**os.environ, "SIGNALS_ENCRYPTION_MASTER_KEYS": master_keys}
    done = subprocess.run(
        [sys.executable, "-m", "services.signals.cli", "--database-url", database_url, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_rotation_rewraps_every_data_key_and_the_old_master_key_can_go(database_url: str) -> None:
    await migrate(database_url, MIGRATIONS)
    m1, m2 = os.urandom(32), os.urandom(32)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        old = keys.KeyHolder(MasterKeyring.parse(_spec("m1", m1)), lambda: pool)
        async with pool.acquire() as conn:
            made = {p: await keys.DataKeys(conn).for_caregiver(p, old.keyring) for p in ("p1", "p2", "p3")}
            assert await keys.DataKeys(conn).for_caregiver("p1", old.keyring) == made["p1"], "one key per caregiver"
        wrapped = [r["wrapped"] for r in await pool.fetch("SELECT wrapped FROM data_keys")]
        assert all(w.startswith("v1.m1.") for w in wrapped) and len(wrapped) == 3

        assert "re-wrapped 3 data key(s) under master key 'm2'" in _cli(
            database_url, f"{_spec('m2', m2)},{_spec('m1', m1)}", "keys", "rotate"
        )
        assert all(r["wrapped"].startswith("v1.m2.") for r in await pool.fetch("SELECT wrapped FROM data_keys"))
        assert "re-wrapped 0" in _cli(database_url, f"{_spec('m2', m2)},{_spec('m1', m1)}", "keys", "rotate")

        new_only = keys.KeyHolder(MasterKeyring.parse(_spec("m2", m2)), lambda: pool)
        for key_id, data_key in made.values():
            assert await new_only.data_key(key_id) == data_key

        # Erasure destroys p1's key; a backup from before brings it back; shred-erased ends it again.
        backup = await pool.fetchrow("SELECT * FROM data_keys WHERE caregiver_pseudonym = 'p1'")
        async with pool.acquire() as conn, conn.transaction():
            assert await keys.DataKeys(conn).destroy(["p1"]) == 1
        assert await new_only.data_key(made["p1"][0]) is None
        exported = _cli(database_url, _spec("m2", m2), "keys", "list-erased")
        assert exported.split() == [made["p1"][0]]
        await pool.execute("DELETE FROM erased_keys")  # the restored database predates the erasure
        await pool.execute(
            "INSERT INTO data_keys (key_id, caregiver_pseudonym, wrapped) VALUES ($1, $2, $3)",
            backup["key_id"],
            backup["caregiver_pseudonym"],
            backup["wrapped"],
        )
        listing = REPO / "test-artifacts" / f"erased-keys-{os.getpid()}.txt"
        listing.parent.mkdir(exist_ok=True)
        listing.write_text(exported)
        try:
            assert "destroyed 1" in _cli(database_url, _spec("m2", m2), "keys", "shred-erased", "--file", str(listing))
        finally:
            listing.unlink()
        assert await new_only.data_key(made["p1"][0]) is None
        assert await new_only.data_key(made["p2"][0]) == made["p2"][1]
    finally:
        await pool.close()
