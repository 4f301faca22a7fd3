#!/usr/bin/env python3
"""Lower the recorded versions of installed packages in a dpkg status file.

usage: set-dpkg-versions.py STATUS_FILE PACKAGE=VERSION[,SOURCE_VERSION] ...

Only the `Version:` field (and the version in `Source: name (version)`, when the stanza has one)
change; everything else stays as dpkg wrote it. SOURCE_VERSION is required when the stanza names
its source version explicitly (binary and source versions differ, e.g. util-linux's epoch), so
binary and source versions stay consistent. Fails if a named package is missing.
"""
import re
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path = sys.argv[1]
    wanted = {}
    for arg in sys.argv[2:]:
        name, _, vers = arg.partition("=")
        binv, _, srcv = vers.partition(",")
        if not name or not binv:
            sys.exit(f"bad argument {arg!r}")
        wanted[name] = (binv, srcv or None)
    with open(path, encoding="utf-8") as f:
        stanzas = f.read().split("\n\n")
    seen = set()
    out = []
    for st in stanzas:
        m = re.search(r"^Package: (\S+)$", st, re.M)
        if m and m.group(1) in wanted:
            name = m.group(1)
            binv, srcv = wanted[name]
            st, n = re.subn(r"^Version: .*$", f"Version: {binv}", st, count=1, flags=re.M)
            if n != 1:
                sys.exit(f"{name}: no Version field")
            src = re.search(r"^Source: (\S+) \((.*)\)$", st, re.M)
            if src:
                if not srcv:
                    sys.exit(f"{name}: stanza has 'Source: {src.group(1)} ({src.group(2)})'; give PACKAGE=VERSION,SOURCE_VERSION")
                st = st.replace(src.group(0), f"Source: {src.group(1)} ({srcv})")
            elif srcv and srcv != binv:
                # The source version was implied equal to the binary one; now it differs.
                st, n = re.subn(r"^Source: (\S+)$", lambda mm: f"Source: {mm.group(1)} ({srcv})", st, count=1, flags=re.M)
                if n != 1:
                    st = re.sub(r"^(Package: \S+)$", lambda mm: f"{mm.group(1)}\nSource: {name} ({srcv})", st, count=1, flags=re.M)
            seen.add(name)
        out.append(st)
    missing = sorted(set(wanted) - seen)
    if missing:
        sys.exit(f"not installed in {path}: {', '.join(missing)}")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n\n".join(out))
    import os

    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
