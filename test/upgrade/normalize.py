"""normalize.py DUMP OIDMAP — a `pg_dump --schema-only --binary-upgrade` of
one database, with what differs between any two installations of the same
schema taken out: the dump's random \\restrict key, the OIDs, relfilenodes,
frozen xids and attribute versions pg_upgrade would carry over. OIDs that
name relations (the extension's configuration tables, in their order) are
replaced by the relation's name, read from OIDMAP ("oid name" lines), so
the configuration list is still compared. Prints the result."""
import re
import sys

names = {}
with open(sys.argv[2]) as f:
    for line in f:
        oid, _, name = line.rstrip("\n").partition(" ")
        if oid:
            names[oid] = name

drop = re.compile(r"^(\\(un)?restrict |SELECT pg_catalog\.binary_upgrade_set_next_|"
                  r"SET relfrozenxid = |WHERE oid = '\d+';$)")
with open(sys.argv[1]) as f:
    for line in f:
        if drop.match(line):
            continue
        if "binary_upgrade_create_empty_extension" in line:
            line = re.sub(r"'\{([\d,]*)\}'",
                          lambda m: "'{" + ",".join(names.get(o, "?" + o) for o in m.group(1).split(",") if o) + "}'",
                          line)
        sys.stdout.write(line)
