"""The key holder: caregivers' data keys (crypto-shredding, see ``shared.crypto``).

Signals is the one service that keeps data keys: generated at intake, one per caregiver
pseudonym, stored only wrapped by the master key. The other services fetch a key through
the internal endpoint (``shared.keys``) and never store it. Erasing the person destroys the
key, which makes every copy of their sealed data unreadable: topics, DLQs, retained outbox
rows, backups. Destroyed key ids are listed in ``erased_keys`` so a restored backup can be
shredded again."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import asyncpg

from shared import crypto


class KeyHolder:
    """Data keys of the signals database, unwrapped with the master keyring."""

    def __init__(self, keyring: crypto.MasterKeyring, pool: Callable[[], asyncpg.Pool]) -> None:
        self.keyring = keyring
        self._pool = pool

    async def data_key(self, key_id: str, subject: str = "") -> bytes | None:
        """A key by id, ``None`` once destroyed (``shared.sealing.KeySource``)."""
        return (await self.data_keys([key_id])).get(key_id)

    async def data_keys(self, key_ids: Sequence[str]) -> dict[str, bytes]:
        """The keys of ``key_ids`` that still exist, in one query (the batch endpoint)."""
        rows = await self._pool().fetch("SELECT key_id, wrapped FROM data_keys WHERE key_id = ANY($1::text[])", key_ids)
        return {row["key_id"]: self.keyring.unwrap(row["key_id"], row["wrapped"]) for row in rows}

    async def prefetch(self, wanted: Mapping[str, str]) -> None:
        """Nothing to gather: each key is one indexed read of this service's own database."""

    def forget_subject(self, subject: str) -> None:
        """Nothing cached here: the key row itself is what erasure deletes."""

    async def close(self) -> None:
        """Nothing to release: the keys live in this service's own database."""


class DataKeys:
    """The data keys table, inside a unit of work's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def for_caregiver(self, pseudonym: str, keyring: crypto.MasterKeyring) -> tuple[str, bytes]:
        """The caregiver's key id and data key, created on their first signal. Two signals
        about one caregiver at once end with one key: the second waits on the unique row."""
        select = "SELECT key_id, wrapped FROM data_keys WHERE caregiver_pseudonym = $1"
        row = await self.conn.fetchrow(select, pseudonym)
        if row is None:
            key_id, key = crypto.new_key_id(), crypto.new_data_key()
            await self.conn.execute(
                """INSERT INTO data_keys (key_id, caregiver_pseudonym, wrapped) VALUES ($1, $2, $3)
                   ON CONFLICT (caregiver_pseudonym) DO NOTHING""",
                key_id,
                pseudonym,
                keyring.wrap(key_id, key),
            )
            row = await self.conn.fetchrow(select, pseudonym)
        return row["key_id"], keyring.unwrap(row["key_id"], row["wrapped"])

    async def destroy(self, pseudonyms: Iterable[str]) -> int:
        """Crypto-shred the caregivers' keys, in the erasure's transaction."""
        key_ids = await self.conn.fetch(
            "DELETE FROM data_keys WHERE caregiver_pseudonym = ANY($1::text[]) RETURNING key_id", list(pseudonyms)
        )
        await self.conn.executemany(
            "INSERT INTO erased_keys (key_id) VALUES ($1) ON CONFLICT DO NOTHING", [(row["key_id"],) for row in key_ids]
        )
        return len(key_ids)


async def rotate(conn: asyncpg.Connection, keyring: crypto.MasterKeyring) -> int:
    """Re-wrap every data key not under the current master key; returns how many."""
    rows = await conn.fetch(
        "SELECT key_id, wrapped FROM data_keys WHERE wrapped NOT LIKE $1 FOR UPDATE",
        f"{crypto.VERSION}.{keyring.current}.%",
    )
    await conn.executemany(
        "UPDATE data_keys SET wrapped = $2, rewrapped_at = now() WHERE key_id = $1",
        [(row["key_id"], keyring.rewrap(row["key_id"], row["wrapped"])) for row in rows],
    )
    return len(rows)


async def erased_key_ids(conn: asyncpg.Connection) -> list[str]:
    return [row["key_id"] for row in await conn.fetch("SELECT key_id FROM erased_keys ORDER BY erased_at, key_id")]


async def shred_erased(conn: asyncpg.Connection, more: Iterable[str] = ()) -> int:
    """After restoring a backup: destroy again every key erased since (``erased_keys`` plus
    the ids exported before the restore); returns how many keys were destroyed."""
    await conn.executemany(
        "INSERT INTO erased_keys (key_id) VALUES ($1) ON CONFLICT DO NOTHING", [(key_id,) for key_id in more]
    )
    result = await conn.execute("DELETE FROM data_keys WHERE key_id IN (SELECT key_id FROM erased_keys)")
    return int(result.split()[-1])
