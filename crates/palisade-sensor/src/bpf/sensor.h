/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Palisade node sensor: record layouts shared by sensor.bpf.c and the Rust decoder in
 * src/kernel/decode.rs. Every record starts with struct ev_hdr; `size` is the number of bytes
 * of the record actually written to the ring buffer (variable-length tails are cut).
 * All fields are naturally aligned; the decoder reads them by offset (little endian).
 */
#ifndef PALISADE_SENSOR_H
#define PALISADE_SENSOR_H

#define COMM_LEN 16
#define PATH_LEN 256
#define ARGS_CAP 4096
#define DNS_CAP 512
#define NAME_LEN 64
#define FSTYPE_LEN 32

enum ev_kind {
	EV_EXEC = 1,
	EV_EXIT = 2,
	EV_CONNECT = 3,
	EV_ACCEPT = 4,
	EV_DNS = 5,
	EV_OPEN = 6,
	EV_UNLINK = 7,
	EV_PTRACE = 8,
	EV_NAMESPACE = 9,
	EV_MODULE = 10,
	EV_MOUNT = 11,
	EV_MEMFD = 12,
	EV_CHMOD = 13,
	EV_KIND_MAX = 14,
};

/* counters map (per-CPU array of u64): index = kind for ring-buffer drops,
 * CNT_FILTERED + kind for records the in-kernel filter rejected. */
#define CNT_FILTERED 16
#define CNT_SLOTS 32

/* config map (array, one struct at index 0), written by userspace after load. */
struct sensor_config {
	__u32 self_tgid;
	__u32 args_cap; /* bytes of argv to copy, <= ARGS_CAP - 1 */
	__u32 dns_port; /* host order */
	__u32 modules_enabled; /* the kernel has loadable modules */
	/* Wake the reader only once this many bytes wait in the ring (0: on every record); below
	 * it the reader picks records up on its own poll interval. Saves a wake-up per record. */
	__u32 wakeup_bytes;
	__u32 _pad;
};

struct ev_hdr {
	__u64 ts_boot_ns;
	__u64 cgroup_id;
	__u64 cap_effective;
	__u32 kind;
	__u32 size;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 pid_ns;
	__u32 mnt_ns;
	char comm[COMM_LEN];
}; /* 80 bytes */

#define EXEC_F_DELETED 1
#define EXEC_F_MEMFD 2
#define EXEC_F_UPPER 4
#define EXEC_F_WRITTEN 8
#define EXEC_F_ARGS_TRUNC 16

struct ev_exec {
	struct ev_hdr h;
	__u32 parent_pid;
	__u32 flags;
	__u8 stdio[4];
	__u32 args_len;
	__u32 writer_pid;
	__u32 pad;
	__u64 writer_cgroup_id;
	__u64 written_ns_before;
	char writer_comm[COMM_LEN];
	char parent_comm[COMM_LEN];
	char filename[PATH_LEN];
	char args[ARGS_CAP]; /* NUL-separated, args_len bytes */
};

struct ev_exit {
	struct ev_hdr h;
	__s32 exit_code;
	__u32 pad;
};

/* connect / accept / dns share the address block */
struct ev_sock {
	struct ev_hdr h;
	__u16 family; /* AF_INET 2, AF_INET6 10 */
	__u16 protocol;
	__u16 src_port; /* host order */
	__u16 dst_port;
	__u8 src[16];
	__u8 dst[16];
	__u32 payload_len; /* dns only */
	__u32 pad;
	__u8 payload[DNS_CAP];
};

struct ev_path {
	struct ev_hdr h;
	__u32 flags; /* open: f_flags; chmod: mode */
	__u32 extra; /* chmod: 1 if written recently */
	char path[PATH_LEN];
};

struct ev_ptrace {
	struct ev_hdr h;
	__s64 request;
	__u32 target_pid;
	__u32 pad;
};

#define NS_UNSHARE 1
#define NS_SETNS 2
#define NS_CLONE 3

struct ev_ns {
	struct ev_hdr h;
	__u64 flags;
	__u32 syscall;
	__u32 pad;
};

struct ev_module {
	struct ev_hdr h;
	__u32 syscall; /* 1 init_module, 2 finit_module */
	__u32 pad;
	char name[NAME_LEN];
};

struct ev_mount {
	struct ev_hdr h;
	__u64 flags;
	char source[PATH_LEN];
	char target[PATH_LEN];
	char fstype[FSTYPE_LEN];
};

struct ev_memfd {
	struct ev_hdr h;
	__u32 flags;
	__u32 pad;
	char name[NAME_LEN];
};

/* Sensitive paths. `prefixes` (LPM trie): key = path bytes; a hit is a match when `plain`, and
 * when `group` != 0 the pattern was "prefix*rest": skip one path component after the prefix and
 * look the remainder up in `rests` (LPM trie) under key [group byte][remainder bytes]. */
struct prefix_key {
	__u32 prefixlen; /* bits */
	char data[PATH_LEN];
};

struct prefix_val {
	__u32 plain; /* the prefix itself (or a shorter plain prefix) matches */
	__u32 plen;  /* prefix length in bytes */
	__u32 group; /* wildcard group id (1..255), 0 = none */
	__u32 write_only; /* the plain match counts only for writes (open for write, unlink) */
};
/* `rests` value: __u32 write_only */

/* offset of the `rests` lookup key inside a scratch slot */
#define REST_KEY_OFF 1024

/* The Rust decoder (src/kernel/decode.rs) reads these offsets; keep them in step. */
_Static_assert(sizeof(struct ev_hdr) == 80, "ev_hdr");
_Static_assert(__builtin_offsetof(struct ev_exec, stdio) == 88, "exec stdio");
_Static_assert(__builtin_offsetof(struct ev_exec, writer_cgroup_id) == 104, "exec writer_cgroup_id");
_Static_assert(__builtin_offsetof(struct ev_exec, writer_comm) == 120, "exec writer_comm");
_Static_assert(__builtin_offsetof(struct ev_exec, parent_comm) == 136, "exec parent_comm");
_Static_assert(__builtin_offsetof(struct ev_exec, filename) == 152, "exec filename");
_Static_assert(__builtin_offsetof(struct ev_exec, args) == 408, "exec args");
_Static_assert(__builtin_offsetof(struct ev_sock, src) == 88, "sock src");
_Static_assert(__builtin_offsetof(struct ev_sock, payload_len) == 120, "sock payload_len");
_Static_assert(__builtin_offsetof(struct ev_sock, payload) == 128, "sock payload");
_Static_assert(__builtin_offsetof(struct ev_path, path) == 88, "path path");
_Static_assert(__builtin_offsetof(struct ev_ptrace, target_pid) == 88, "ptrace target");
_Static_assert(__builtin_offsetof(struct ev_ns, syscall) == 88, "ns syscall");
_Static_assert(__builtin_offsetof(struct ev_module, name) == 88, "module name");
_Static_assert(__builtin_offsetof(struct ev_mount, source) == 88, "mount source");
_Static_assert(__builtin_offsetof(struct ev_mount, target) == 344, "mount target");
_Static_assert(__builtin_offsetof(struct ev_mount, fstype) == 600, "mount fstype");
_Static_assert(sizeof(struct ev_mount) == 632, "mount size");
_Static_assert(__builtin_offsetof(struct ev_memfd, name) == 88, "memfd name");
_Static_assert(sizeof(struct prefix_key) == 260, "prefix key");
_Static_assert(sizeof(struct prefix_val) == 16, "prefix val");
_Static_assert(sizeof(struct sensor_config) == 24, "config");

#endif
