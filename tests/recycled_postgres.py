"""Migrated PostgreSQL databases for tests, emptied and handed out again instead of dropped.

Copying the migrated template (``CREATE DATABASE ... TEMPLATE``) and dropping the copy after the
test cost about a second per test on PostgreSQL 15, writing the whole database to the WAL and
syncing it twice; a few hundred tests on PostgreSQL spent minutes on it. Emptying the rows of a
database the test is done with takes a few milliseconds, so a test's database comes from a pool:

- when the test is done, every connection still open on its database is ended (as ``DROP
  DATABASE ... WITH (FORCE)`` did), every row of every table but ``alembic_version`` is deleted
  and every sequence restarted;
- the database goes back to the pool only if its schema, settings, privileges, sequence states
  and planner statistics then match the template's to the letter (:data:`FINGERPRINT`); a test
  that migrated, altered a table, added a trigger, changed a setting or analyzed a table leaves a
  database that is dropped, as before;
- a database taken from the pool that someone connected to after it was emptied is dropped and a
  fresh copy made, so a server a failed test left running cannot write into the next test's rows.

So each test still starts on a database no other test has rows in, in the template's schema.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

# Everything about a database that a test could change other than its rows, as one digest:
# schemas, relations and their columns, defaults, constraints, indexes, triggers, functions,
# policies, types, extensions, owners and privileges, per-database settings, where each
# sequence stands, and the planner's view (page and row estimates, column statistics: the
# template has none, and a VACUUM or ANALYZE, by a test or by autovacuum, would change the
# plans the next test gets). Equal digests mean the emptied database is the template again.
FINGERPRINT = text(
    r"""
    WITH user_namespaces AS (
        SELECT oid FROM pg_namespace
        WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'
    ), lines AS (
        SELECT concat_ws(' ', 'version', version_num) AS line FROM public.alembic_version
        UNION ALL
        SELECT concat_ws(' ', 'schema', nspname, nspowner::regrole, coalesce(nspacl::text, '-'))
        FROM pg_namespace WHERE oid IN (SELECT oid FROM user_namespaces)
        UNION ALL
        SELECT concat_ws(
            ' ', 'relation', c.oid::regclass, c.relkind, c.relowner::regrole,
            coalesce(c.relacl::text, '-'), c.relrowsecurity, c.relforcerowsecurity,
            c.relpersistence, coalesce(array_to_string(c.reloptions, ','), '-'),
            c.relpages, c.reltuples,
            CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END
        )
        FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM user_namespaces)
        UNION ALL
        SELECT concat_ws(
            ' ', 'column', a.attrelid::regclass, a.attname, format_type(a.atttypid, a.atttypmod),
            a.attnotnull, a.attidentity, a.attgenerated,
            coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
        )
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace IN (SELECT oid FROM user_namespaces)
            AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL
        SELECT concat_ws(' ', 'constraint', conrelid::regclass, conname, pg_get_constraintdef(oid))
        FROM pg_constraint WHERE connamespace IN (SELECT oid FROM user_namespaces)
        UNION ALL
        SELECT concat_ws(' ', 'index', pg_get_indexdef(indexrelid)) FROM pg_index
        WHERE indrelid IN (
            SELECT oid FROM pg_class WHERE relnamespace IN (SELECT oid FROM user_namespaces)
        )
        UNION ALL
        SELECT concat_ws(' ', 'trigger', tgenabled, pg_get_triggerdef(oid)) FROM pg_trigger
        WHERE NOT tgisinternal
        UNION ALL
        SELECT concat_ws(' ', 'rule', pg_get_ruledef(r.oid)) FROM pg_rewrite r
        JOIN pg_class c ON c.oid = r.ev_class
        WHERE c.relnamespace IN (SELECT oid FROM user_namespaces) AND c.relkind <> 'v'
        UNION ALL
        SELECT concat_ws(
            ' ', 'function', p.oid::regprocedure, p.proowner::regrole, coalesce(p.proacl::text, '-'),
            md5(coalesce(p.prosrc, '')), coalesce(array_to_string(p.proconfig, ','), '-')
        )
        FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM user_namespaces)
        UNION ALL
        SELECT concat_ws(
            ' ', 'policy', polrelid::regclass, polname, polcmd, polpermissive, polroles::text,
            coalesce(pg_get_expr(polqual, polrelid), '-'),
            coalesce(pg_get_expr(polwithcheck, polrelid), '-')
        )
        FROM pg_policy
        UNION ALL
        SELECT concat_ws(' ', 'type', t.oid::regtype, t.typtype, (
            SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum
            WHERE enumtypid = t.oid
        ))
        FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM user_namespaces)
        UNION ALL
        SELECT concat_ws(' ', 'statistics', starelid::regclass, staattnum) FROM pg_statistic
        WHERE starelid IN (
            SELECT oid FROM pg_class WHERE relnamespace IN (SELECT oid FROM user_namespaces)
        )
        UNION ALL
        SELECT concat_ws(' ', 'extension', extname, extversion) FROM pg_extension
        UNION ALL
        SELECT concat_ws(' ', 'default acl', defaclrole::regrole, defaclobjtype, defaclacl::text)
        FROM pg_default_acl
        UNION ALL
        SELECT concat_ws(' ', 'setting', setrole, array_to_string(setconfig, ','))
        FROM pg_db_role_setting
        WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
        UNION ALL
        SELECT concat_ws(
            ' ', 'database', datdba::regrole, coalesce(datacl::text, '-'), datallowconn,
            datconnlimit
        )
        FROM pg_database WHERE datname = current_database()
        UNION ALL
        SELECT concat_ws(
            ' ', 'sequence', schemaname, sequencename, coalesce(last_value::text, 'unused')
        )
        FROM pg_sequences
    )
    SELECT md5(string_agg(line, E'\n' ORDER BY line)) FROM lines
    """
)

# Rows of every table a test could have written; alembic_version is the schema's, not a test's.
_TABLES = text(
    r"""
    SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT LIKE 'pg\_%'
        AND n.nspname <> 'information_schema'
        AND NOT (n.nspname = 'public' AND c.relname = 'alembic_version')
    """
)
_SEQUENCES = text("SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences")
_OTHER_SESSIONS = text(
    "SELECT pid FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
    " AND backend_type = 'client backend'"
)


class RecycledPostgres:
    """Copies of one migrated template database, each used by one test at a time.

    ``admin_url`` reaches the server as a user who may create and drop databases; the cleaning
    turns triggers and foreign-key checks off for its own transaction
    (``session_replication_role``), which takes a superuser, as the default admin URL is. A
    database that cannot be emptied, for whatever reason, is dropped rather than reused.
    """

    def __init__(self, admin_url: str, template: str) -> None:
        self._admin_url = make_url(admin_url)
        self._template = template
        # Nothing may stay connected to the template: PostgreSQL copies only an unused database.
        self._admin = create_engine(
            self._admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool
        )
        self._free: list[str] = []
        self._fingerprint = self._fingerprint_of(template)

    def take(self) -> str:
        """The URL of a migrated database with no rows, for one test."""
        while self._free:
            name = self._free.pop()
            with self._admin.connect() as connection:
                touched = connection.execute(_OTHER_SESSIONS, {"name": name}).first()
            if touched is None:
                return self._url(name)
            self._drop(name)
        name = f"simconfig_test_{uuid.uuid4().hex}"
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"'))
        return self._url(name)

    def give_back(self, url: str) -> None:
        """Ends every session on the database, empties it, and keeps it if it is the template's."""
        name = make_url(url).database
        assert name is not None
        with self._admin.connect() as connection:
            for (pid,) in connection.execute(_OTHER_SESSIONS, {"name": name}).all():
                # Waits (up to 5 s) until the session is gone and its locks with it.
                connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        try:
            self._empty(name)
            same = self._fingerprint_of(name) == self._fingerprint
        except SQLAlchemyError:
            same = False
        if same:
            self._free.append(name)
        else:
            self._drop(name)

    def close(self) -> None:
        """Drops every database of the pool."""
        while self._free:
            self._drop(self._free.pop())
        self._admin.dispose()

    def _url(self, name: str) -> str:
        return self._admin_url.set(database=name).render_as_string(hide_password=False)

    def _engine(self, name: str) -> Engine:
        return create_engine(
            self._url(name), poolclass=NullPool, connect_args={"connect_timeout": 5}
        )

    def _empty(self, name: str) -> None:
        engine = self._engine(name)
        try:
            with engine.begin() as connection:
                connection.execute(text("SET LOCAL lock_timeout = '5s'"))
                # Every table is emptied, so no trigger needs to keep another table in step and no
                # foreign key can be left dangling; triggers would also write rows of their own.
                connection.execute(text("SET LOCAL session_replication_role = replica"))
                for table in connection.execute(_TABLES).scalars().all():
                    connection.execute(text(f"DELETE FROM {table}"))
                for sequence in connection.execute(_SEQUENCES).scalars().all():
                    connection.execute(text(f"ALTER SEQUENCE {sequence} RESTART"))
        finally:
            engine.dispose()

    def _fingerprint_of(self, name: str) -> str:
        engine = self._engine(name)
        try:
            with engine.connect() as connection:
                return str(connection.execute(FINGERPRINT).scalar_one())
        finally:
            engine.dispose()

    def _drop(self, name: str) -> None:
        with self._admin.connect() as connection:
            # FORCE ends connections a test or a pool left open.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
