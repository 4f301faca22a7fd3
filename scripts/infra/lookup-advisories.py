#!/usr/bin/env python3
"""Look up which advisories in the shared advisory data apply to a package version.

A developer aid for keeping the expected-advisory tables of the e2e tests (and docs/testing.md)
honest: it evaluates the data with an implementation independent of Palisade's (Python's
`packaging` for PEP 440, a small SemVer comparison, `dpkg --compare-versions` for Debian,
`apk`-style comparison is not needed: Alpine lookups list the secfixes and you compare by eye).

usage:
  lookup-advisories.py SHARED_DATA_DIR osv ECOSYSTEM NAME VERSION
  lookup-advisories.py SHARED_DATA_DIR dsa RELEASE SOURCE VERSION
  lookup-advisories.py SHARED_DATA_DIR alpine BRANCH NAME

ECOSYSTEM is PyPI, crates.io, Go or npm (npm reads crates/palisade/tests/fixtures/advisories).
Prints one line per applicable advisory: id, aliases, fixed version.
"""
import json
import os
import re
import subprocess
import sys

try:
    import yaml  # type: ignore
except ImportError:  # pragma: no cover
    yaml = None


def semver_key(v):
    v = v.lstrip("v")
    core, _, pre = v.partition("-")
    core = core.split("+")[0]
    nums = [int(x) if x.isdigit() else 0 for x in core.split(".")]
    while len(nums) < 3:
        nums.append(0)
    # A pre-release sorts before the release.
    pre_key = (1,) if not pre else (0, tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")))
    return (tuple(nums), pre_key)


def pep440_key(v):
    from packaging.version import Version

    return Version(v)


def affected(events, version, key):
    """OSV range evaluation over sorted events."""
    vk = key(version)
    state = False
    fixed = None
    for ev in events:
        if "introduced" in ev:
            intro = ev["introduced"]
            if intro == "0" or key(intro) <= vk:
                state = True
        elif "fixed" in ev:
            if key(ev["fixed"]) <= vk:
                state = False
            elif state and fixed is None:
                fixed = ev["fixed"]
        elif "last_affected" in ev:
            if key(ev["last_affected"]) < vk:
                state = False
    return state, fixed


def load_osv(path):
    with open(path, encoding="utf-8") as f:
        if path.endswith((".yaml", ".yml")):
            return yaml.safe_load(f)
        return json.load(f)


def osv(shared, eco, name, version):
    here = os.path.dirname(os.path.abspath(__file__))
    roots = {
        "PyPI": [os.path.join(shared, "advisories/pypa/vulns")],
        "crates.io": [os.path.join(shared, "advisories/rustsec/osv/crates")],
        "Go": [os.path.join(shared, "advisories/golang-vulndb/data/osv")],
        "npm": [os.path.join(here, "../../crates/palisade/tests/fixtures/advisories")],
    }[eco]
    key = pep440_key if eco == "PyPI" else semver_key
    norm = (lambda s: re.sub(r"[-_.]+", "-", s).lower()) if eco == "PyPI" else (lambda s: s)
    for root in roots:
        for dp, _, fns in os.walk(root):
            for fn in sorted(fns):
                if not fn.endswith((".json", ".yaml", ".yml")):
                    continue
                doc = load_osv(os.path.join(dp, fn))
                if not isinstance(doc, dict) or doc.get("withdrawn"):
                    continue
                for aff in doc.get("affected", []):
                    pkg = aff.get("package", {})
                    if pkg.get("ecosystem") != eco or norm(pkg.get("name", "")) != norm(name):
                        continue
                    hit, fixed = False, None
                    if version in aff.get("versions", []):
                        hit = True
                    for r in aff.get("ranges", []):
                        if r.get("type") not in ("ECOSYSTEM", "SEMVER"):
                            continue
                        h, fx = affected(r.get("events", []), version, key)
                        if h:
                            hit = True
                            fixed = fixed or fx
                    if hit:
                        print(doc["id"], ",".join(doc.get("aliases", [])), fixed or "-")


def dpkg_lt(a, b):
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0


def dsa(shared, release, source, version):
    cur, cves = None, []
    with open(os.path.join(shared, "advisories/debian-security-tracker/data/DSA/list"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^\[.*\] (DSA-\S+) ", line)
            if m:
                cur, cves = m.group(1), []
                continue
            m = re.match(r"^\s+\{(.*)\}", line)
            if m:
                cves = m.group(1).split()
                continue
            m = re.match(r"^\s+\[(\S+)\] - (\S+) (\S+)", line)
            if m and m.group(1) == release and m.group(2) == source and not m.group(3).startswith("<"):
                if dpkg_lt(version, m.group(3)):
                    print(cur, ",".join(cves), m.group(3))


def alpine(shared, branch, name):
    base = os.path.join(shared, "advisories/alpine-secdb-json/alpine", branch)
    for fn in sorted(os.listdir(base)):
        with open(os.path.join(base, fn), encoding="utf-8") as f:
            doc = json.load(f)
        for p in doc.get("packages", []):
            if p["pkg"]["name"] == name:
                for ver, ids in p["pkg"].get("secfixes", {}).items():
                    print(fn, ver, " ".join(ids))


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    shared, kind = sys.argv[1], sys.argv[2]
    if kind == "osv":
        osv(shared, *sys.argv[3:6])
    elif kind == "dsa":
        dsa(shared, *sys.argv[3:6])
    elif kind == "alpine":
        alpine(shared, *sys.argv[3:5])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
