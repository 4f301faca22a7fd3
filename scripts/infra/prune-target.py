#!/usr/bin/env python3
"""Keeps a long-lived cargo target directory from filling the disk.

Every edit of a workspace crate leaves another copy of its test binaries and libraries in
target/<profile>/deps (hundreds of MB each with debug info); cargo never removes the old ones.
When the file system holding the target directory has less free space than asked, this removes
the incremental caches and, for the workspace's own targets only (from `cargo metadata`), every
copy but the newest two of each artefact name (the two cover a crate built with two feature
sets); third-party crates are left alone, as several builds of one of them (host and target,
other features) are all live. Then it reports the free space. It exits 1 when the space is
still below the hard minimum, so the test run stops with a clear message instead of failing
later with "No space left on device" in the middle of a link.

usage: prune-target.py MIN_FREE_GB HARD_MIN_GB TARGET_DIR [TARGET_DIR ...]
"""
import json
import os
import re
import subprocess
import shutil
import sys
from collections import defaultdict

ARTEFACT = re.compile(r"^(.*)-([0-9a-f]{16})(\..*)?$")


def free_gb(path):
    return shutil.disk_usage(path).free / 1e9


def workspace_target_names():
    """File-name stems of the workspace's own libraries, binaries, tests and benches."""
    out = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"],
                         check=True, capture_output=True, text=True).stdout
    names = set()
    for package in json.loads(out)["packages"]:
        for target in package["targets"]:
            stem = target["name"].replace("-", "_")
            names.update({stem, "lib" + stem})
    return names


def prune_profile_dir(profile_dir, own_names):
    """Removes incremental caches and all but the newest two copies of each of our artefacts;
    returns the bytes freed."""
    freed = 0
    incremental = os.path.join(profile_dir, "incremental")
    if os.path.isdir(incremental):
        for root, _dirs, files in os.walk(incremental):
            for f in files:
                try:
                    freed += os.lstat(os.path.join(root, f)).st_size
                except OSError:
                    pass
        shutil.rmtree(incremental, ignore_errors=True)
    deps = os.path.join(profile_dir, "deps")
    if not os.path.isdir(deps):
        return freed
    groups = defaultdict(list)
    for name in os.listdir(deps):
        m = ARTEFACT.match(name)
        if m and m.group(1) in own_names:
            groups[(m.group(1), m.group(3) or "")].append(name)
    for names in groups.values():
        if len(names) <= 2:
            continue
        stats = []
        for name in names:
            try:
                stats.append((os.lstat(os.path.join(deps, name)), name))
            except OSError:
                pass
        stats.sort(key=lambda s: s[0].st_mtime, reverse=True)
        for st, name in stats[2:]:
            try:
                os.remove(os.path.join(deps, name))
                freed += st.st_size
            except OSError:
                pass
    return freed


def profile_dirs(target):
    """target/debug and target/<triple>/debug (cargo fuzz builds under a target triple)."""
    for entry in (os.listdir(target) if os.path.isdir(target) else []):
        path = os.path.join(target, entry)
        if not os.path.isdir(path):
            continue
        if os.path.isdir(os.path.join(path, "deps")):
            yield path
        else:
            for sub in os.listdir(path):
                if os.path.isdir(os.path.join(path, sub, "deps")):
                    yield os.path.join(path, sub)


def main(argv):
    if len(argv) < 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    min_free, hard_min = float(argv[1]), float(argv[2])
    targets = [t for t in argv[3:] if os.path.isdir(t)]
    probe = targets[0] if targets else "/"
    before = free_gb(probe)
    if before >= min_free:
        print(f"disk: {before:.1f} GB free (want {min_free:.0f}): nothing to prune")
        return 0
    own_names = workspace_target_names()
    freed = sum(prune_profile_dir(p, own_names) for t in targets for p in profile_dirs(t))
    after = free_gb(probe)
    print(f"disk: {before:.1f} GB free, below {min_free:.0f} GB: pruned {freed / 1e9:.1f} GB of stale "
          f"build artefacts, now {after:.1f} GB free")
    if after < hard_min:
        print(f"disk: only {after:.1f} GB free on the file system of {probe}; a build needs at least "
              f"{hard_min:.0f} GB. Free space (or point CARGO_TARGET_DIR elsewhere) and rerun.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
