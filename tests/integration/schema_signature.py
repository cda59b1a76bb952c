"""A database's schema as comparable rows, read from the catalog, and a readable difference.

Each query returns rows whose first `key` columns name an object and whose other columns
describe it. alembic's own table is left out: it records where the migrations are, not the
schema. Privileges are exploded to one row per grant (the order of an ACL is not compared)
and an ACL never granted on reads as its default, so an untouched object and one granted
back to its defaults compare equal.
"""
from __future__ import annotations

import difflib

_REL = """c.relnamespace = 'public'::regnamespace AND c.relname <> 'alembic_version'"""
_GRANTEE = "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END"

# name -> (query, number of leading columns that name the object)
SCHEMA_QUERIES: dict[str, tuple[str, int]] = {
    "relations": (f"""SELECT c.relname, c.relkind::text, pg_get_userbyid(c.relowner), c.relpersistence::text,
                             c.relrowsecurity, c.relforcerowsecurity, coalesce(c.reloptions::text, '')
                        FROM pg_class c WHERE {_REL} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')""", 1),
    "columns": (f"""SELECT c.relname, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                           coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text,
                           a.attgenerated::text, coalesce(co.collname, '')
                      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                      LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0
                     WHERE {_REL} AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                       AND a.attnum > 0 AND NOT a.attisdropped""", 2),
    "constraints": (f"""SELECT c.relname, k.conname, k.contype::text, pg_get_constraintdef(k.oid)
                          FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
                         WHERE {_REL}""", 2),
    "indexes": ("""SELECT tablename, indexname, indexdef FROM pg_indexes
                    WHERE schemaname = 'public' AND tablename <> 'alembic_version'""", 2),
    "sequences": (f"""SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,
                             s.seqmax, s.seqcache, s.seqcycle,
                             coalesce(o.relname || '.' || oa.attname, '')
                        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
                        LEFT JOIN pg_depend dep ON dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
                             AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
                        LEFT JOIN pg_class o ON o.oid = dep.refobjid
                        LEFT JOIN pg_attribute oa ON oa.attrelid = dep.refobjid AND oa.attnum = dep.refobjsubid
                       WHERE {_REL}""", 1),
    "views": (f"""SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c
                   WHERE {_REL} AND c.relkind IN ('v', 'm')""", 1),
    "functions": ("""SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner), pg_get_functiondef(p.oid)
                       FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace""", 1),
    "triggers": ("""SELECT t.tgrelid::regclass::text, t.tgname, t.tgenabled::text, pg_get_triggerdef(t.oid)
                      FROM pg_trigger t WHERE NOT t.tgisinternal""", 2),
    "policies": ("""SELECT tablename, policyname, permissive, roles::text, cmd,
                           coalesce(qual, ''), coalesce(with_check, '')
                      FROM pg_policies WHERE schemaname = 'public'""", 2),
    "rules": ("""SELECT tablename, rulename, definition FROM pg_rules WHERE schemaname = 'public'""", 2),
    "table_grants": (f"""SELECT c.relname, {_GRANTEE}, a.privilege_type, pg_get_userbyid(a.grantor), a.is_grantable
                           FROM pg_class c,
                                aclexplode(coalesce(c.relacl, acldefault(
                                    CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
                          WHERE {_REL} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')""", 3),
    "column_grants": (f"""SELECT c.relname, att.attname, {_GRANTEE}, a.privilege_type, pg_get_userbyid(a.grantor),
                                 a.is_grantable
                            FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid,
                                 aclexplode(att.attacl) a
                           WHERE {_REL} AND att.attacl IS NOT NULL""", 4),
    "function_grants": (f"""SELECT p.oid::regprocedure::text, {_GRANTEE}, a.privilege_type,
                                   pg_get_userbyid(a.grantor), a.is_grantable
                              FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                             WHERE p.pronamespace = 'public'::regnamespace""", 3),
    "schema": (f"""SELECT n.nspname, pg_get_userbyid(n.nspowner), {_GRANTEE}, a.privilege_type, a.is_grantable
                     FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                    WHERE n.nspname = 'public'""", 4),
    "default_privileges": ("""SELECT pg_get_userbyid(defaclrole), defaclobjtype::text, defaclacl::text
                                FROM pg_default_acl""", 2),
    "types": ("""SELECT t.typname, t.typtype::text, format_type(t.typbasetype, t.typtypmod), t.typnotnull,
                        coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                                    FROM pg_enum e WHERE e.enumtypid = t.oid), '')
                   FROM pg_type t
                  WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'r', 'm')
                     OR (t.typnamespace = 'public'::regnamespace AND t.typtype = 'c'
                         AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')""", 1),
    "extensions": ("SELECT extname, extversion FROM pg_extension", 1),
    "comments": ("""SELECT d.classoid::regclass::text, pg_describe_object(d.classoid, d.objoid, d.objsubid),
                           d.description
                      FROM pg_description d
                     WHERE d.objoid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace
                                        UNION ALL SELECT oid FROM pg_proc WHERE pronamespace = 'public'::regnamespace)""",
                 2),
}


def schema_signature(db) -> dict[str, list[tuple]]:
    """Every query's rows, sorted; `db` is a test database (anything with .sql(query))."""
    return {name: sorted(tuple(r) for r in db.sql(query)) for name, (query, _) in SCHEMA_QUERIES.items()}


def _show(value) -> str:
    return value if isinstance(value, str) else repr(value)


def signature_difference(a: dict, b: dict, a_name: str = "left", b_name: str = "right") -> str:
    """What differs between two signatures, object by object ('' when they are equal): objects
    only one side has, and for an object both have, each differing column; a long text (a
    function's or view's definition) as a unified diff."""
    out: list[str] = []
    for name, (_, key) in SCHEMA_QUERIES.items():
        left = {row[:key]: row[key:] for row in a.get(name, [])}
        right = {row[:key]: row[key:] for row in b.get(name, [])}
        lines: list[str] = []
        for k in sorted(left.keys() - right.keys()):
            lines.append(f"  only in {a_name}: {k} {left[k]}")
        for k in sorted(right.keys() - left.keys()):
            lines.append(f"  only in {b_name}: {k} {right[k]}")
        for k in sorted(left.keys() & right.keys()):
            if left[k] == right[k]:
                continue
            lines.append(f"  {k} differs:")
            for i, (x, y) in enumerate(zip(left[k], right[k])):
                if x == y:
                    continue
                if isinstance(x, str) and isinstance(y, str) and ("\n" in x or "\n" in y):
                    diff = difflib.unified_diff(x.splitlines(), y.splitlines(), a_name, b_name, lineterm="", n=2)
                    lines += ["    " + line for line in diff]
                else:
                    lines.append(f"    column {key + i}: {a_name} {_show(x)}, {b_name} {_show(y)}")
        if lines:
            out.append(f"{name}:")
            out += lines
    return "\n".join(out)
