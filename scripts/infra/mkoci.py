#!/usr/bin/env python3
"""Write OCI image layouts by hand (no Docker, no umoci), for Palisade's test fixtures.

  mkoci.py image LAYOUT TAG --arch amd64 [--variant v8] [--compression gzip|zstd|none] DIR [DIR...]
      One image manifest whose layers are the given directories, in order. A layer directory holds
      the files that layer adds; whiteouts are written as they appear in a layer tar: an empty file
      `.wh.NAME` deletes NAME from lower layers, `.wh..wh..opq` makes its directory opaque.
      Entries are sorted, owned by root, with mtime 0, so the same input gives the same digests.
  mkoci.py index LAYOUT TAG SRC_TAG [SRC_TAG...]
      An image index (multi-platform) under TAG referencing the manifests tagged SRC_TAG.

The layout's index.json names each manifest with the `org.opencontainers.image.ref.name` annotation.
Prints the digest of what it wrote.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}
REF = "org.opencontainers.image.ref.name"


def blob_dir(layout):
    d = os.path.join(layout, "blobs", "sha256")
    os.makedirs(d, exist_ok=True)
    return d


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(blob_dir(layout), digest)
    if not os.path.exists(path):
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
    return "sha256:" + digest


def layer_tar(root):
    """An uncompressed, reproducible tar of everything under root."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                arc = os.path.relpath(full, root)
                info = tar.gettarinfo(full, arc)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = 0
                if info.isreg():
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return raw.getvalue()


def compress(data, how):
    if how == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, stdout=subprocess.PIPE, check=True).stdout
    return data


def read_index(layout):
    path = os.path.join(layout, "index.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}


def write_index(layout, index, descriptor, tag):
    index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get(REF) != tag]
    descriptor = dict(descriptor)
    descriptor["annotations"] = {REF: tag}
    index["manifests"].append(descriptor)
    with open(os.path.join(layout, "oci-layout"), "w", encoding="utf-8") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(layout, "index.json"), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=1)


def cmd_image(args):
    os.makedirs(args.layout, exist_ok=True)
    layers, diff_ids, history = [], [], []
    for d in args.dirs:
        raw = layer_tar(d)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        blob = compress(raw, args.compression)
        layers.append({"mediaType": MT_LAYER[args.compression], "digest": put_blob(args.layout, blob), "size": len(blob)})
        history.append({"created": "1970-01-01T00:00:00Z", "created_by": "mkoci.py layer " + os.path.basename(os.path.normpath(d))})
    config = {
        "created": "1970-01-01T00:00:00Z",
        "architecture": args.arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    if args.variant:
        config["variant"] = args.variant
    cfg = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": put_blob(args.layout, cfg), "size": len(cfg)},
        "layers": layers,
    }
    man = json.dumps(manifest, sort_keys=True).encode()
    desc = {"mediaType": MT_MANIFEST, "digest": put_blob(args.layout, man), "size": len(man),
            "platform": {"architecture": args.arch, "os": "linux"}}
    if args.variant:
        desc["platform"]["variant"] = args.variant
    write_index(args.layout, read_index(args.layout), desc, args.tag)
    print(desc["digest"])


def cmd_index(args):
    index = read_index(args.layout)
    by_tag = {m.get("annotations", {}).get(REF): m for m in index["manifests"]}
    entries = []
    for t in args.sources:
        if t not in by_tag:
            sys.exit(f"mkoci.py: no manifest tagged {t} in {args.layout}")
        m = {k: v for k, v in by_tag[t].items() if k != "annotations"}
        entries.append(m)
    body = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries}, sort_keys=True).encode()
    desc = {"mediaType": MT_INDEX, "digest": put_blob(args.layout, body), "size": len(body)}
    write_index(args.layout, index, desc, args.tag)
    print(desc["digest"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("image")
    pi.add_argument("layout")
    pi.add_argument("tag")
    pi.add_argument("--arch", default="amd64")
    pi.add_argument("--variant")
    pi.add_argument("--compression", choices=sorted(MT_LAYER), default="gzip")
    pi.add_argument("dirs", nargs="+")
    px = sub.add_parser("index")
    px.add_argument("layout")
    px.add_argument("tag")
    px.add_argument("sources", nargs="+")
    args = p.parse_args()
    {"image": cmd_image, "index": cmd_index}[args.cmd](args)


if __name__ == "__main__":
    main()
