// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Palisade node sensor: CO-RE eBPF programs.
 *
 * Only BTF tracepoints are used: this class of kernel (no kprobes; BPF trampolines, hence
 * fentry/fexit/LSM programs, refused with EPERM) still runs tp_btf programs. Four programs:
 * sched_process_exec, sched_process_exit, and raw_syscalls sys_enter/sys_exit, whose first
 * instruction is a switch on the syscall number so the common case costs a compare.
 * Everything is filtered here first (own pid, syscall number, prefix trie for paths, CLONE_NEW*
 * bits, DNS port, execute-bit additions) because the cheapest event is the one never copied.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "sensor.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000
#define S_IFCHR 0020000
#define S_IFIFO 0010000
#define FMODE_WRITE 0x2
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define NS_FLAGS_MASK (0x00020000ULL | 0x02000000ULL | 0x04000000ULL | 0x08000000ULL | \
		       0x10000000ULL | 0x20000000ULL | 0x40000000ULL | 0x00000080ULL)
#define MAX_DEPTH 16
/* keep the compiler from dropping a bounds mask the verifier needs */
#define BOUND(x, mask) ({ asm volatile("%0 &= " #mask : "+r"(x)); x; })
#define NAME_SEG 64

/* Scratch slots: one per program so two different programs preempting each other on a CPU never
 * share a buffer (a program does not re-enter itself on one CPU: the trampoline's recursion guard). */
enum slot {
	SLOT_EXEC, SLOT_ENTER, SLOT_EXIT, SLOT_COUNT,
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* userspace sets the configured size */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLOT_COUNT);
	__type(key, __u32);
	__type(value, struct ev_exec);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sensor_config);
} sensor_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__type(key, struct prefix_key);
	__type(value, struct prefix_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__type(key, struct prefix_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} rests SEC(".maps");

/* A path buffer with slack so bounded writes at masked offsets stay inside (global functions
 * are verified once, against this size). */
struct pbuf {
	char d[PATH_LEN + 2 * NAME_SEG];
};

struct wkey {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

struct wval {
	__u64 ts;
	__u64 cgroup_id;
	__u32 pid;
	__u32 pad;
	char comm[COMM_LEN];
};

/* FNV-1a hashes of absolute paths opened for write since the sensor started (for chmod by path,
 * where the syscall gives a path and not an inode). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} written_paths SEC(".maps");

/* Inodes opened for write, created or made executable since the sensor started. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct wkey);
	__type(value, struct wval);
} written SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline struct sensor_config *cfg(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&sensor_cfg, &zero);
}

/* True when the current task is the sensor itself (or config is missing: not started yet). */
static __always_inline bool is_self(void)
{
	struct sensor_config *c = cfg();
	if (!c)
		return true;
	return (bpf_get_current_pid_tgid() >> 32) == c->self_tgid;
}

static __always_inline void *slot(__u32 idx)
{
	return bpf_map_lookup_elem(&scratch, &idx);
}

static __always_inline void fill_hdr(struct ev_hdr *h, __u32 kind, __u32 size)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	__u64 ug = bpf_get_current_uid_gid();

	h->ts_boot_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->kind = kind;
	h->size = size;
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->uid = (__u32)ug;
	h->gid = ug >> 32;
	h->euid = BPF_CORE_READ(task, cred, euid.val);
	h->cap_effective = BPF_CORE_READ(task, cred, cap_effective.val);
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);

	struct pid *tp = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(tp, level);
	struct upid up = {};
	bpf_probe_read_kernel(&up, sizeof(up),
			      (void *)tp + bpf_core_field_offset(struct pid, numbers) +
				      (level & 31) * sizeof(struct upid));
	h->pid_ns = BPF_CORE_READ(up.ns, ns.inum);
	h->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/* Fills the record's header and writes it to the ring. Records are written without waking the
 * reader unless enough wait (see wakeup_bytes): at low rates the reader takes them in batches on its poll interval instead of a context switch
 * per record, which is most of the sensor's cost per exec on a busy node. */
static __always_inline void emit(void *rec, __u32 size, __u32 kind)
{
	fill_hdr((struct ev_hdr *)rec, kind, size);
	struct sensor_config *c = cfg();
	__u64 flags = 0;
	if (c && c->wakeup_bytes)
		flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= c->wakeup_bytes ?
				BPF_RB_FORCE_WAKEUP :
				BPF_RB_NO_WAKEUP;
	/* The callers bound `size`, but across the calls above the compiler may keep it in a
	 * register the verifier knows nothing of: bound it again on the register passed. */
	asm volatile("" : "+r"(size));
	if (size > sizeof(struct ev_exec))
		return;
	if (bpf_ringbuf_output(&events, rec, size, flags) != 0)
		count(kind);
}

static __always_inline void inode_key(struct inode *inode, struct wkey *k)
{
	k->ino = BPF_CORE_READ(inode, i_ino);
	k->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	k->pad = 0;
}

static __always_inline void mark_written(struct inode *inode)
{
	struct wkey k;
	struct wval v = {};

	inode_key(inode, &k);
	v.ts = bpf_ktime_get_boot_ns();
	v.cgroup_id = bpf_get_current_cgroup_id();
	v.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(v.comm, sizeof(v.comm));
	bpf_map_update_elem(&written, &k, &v, BPF_ANY);
}

/* Path of `dentry` on mount `vfsmnt` up to the root of its mount namespace, written forward into
 * `out` (PATH_LEN bytes followed by slack in the scratch slot). Returns the length without NUL. */
__noinline int build_path(__u64 dentry_p, __u64 vfsmnt_p, struct pbuf *buf)
{
	struct dentry *dentry = (struct dentry *)dentry_p;
	struct vfsmount *vfsmnt = (struct vfsmount *)vfsmnt_p;
	if (!buf)
		return 0;
	char *out = buf->d;
	struct dentry *parts[MAX_DEPTH];
	struct mount *mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	__u32 n = 0;

	for (int i = 0; i < MAX_DEPTH + 8; i++) {
		struct dentry *root = BPF_CORE_READ(mnt, mnt.mnt_root);
		if (dentry == root) {
			struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
			if (parent == mnt || !parent)
				break;
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = parent;
			continue;
		}
		struct dentry *p = BPF_CORE_READ(dentry, d_parent);
		if (p == dentry || !p)
			break;
		if (n < MAX_DEPTH) {
			parts[n & (MAX_DEPTH - 1)] = dentry;
			n++;
		}
		dentry = p;
	}

	__u32 off = 0;
	for (int i = MAX_DEPTH - 1; i >= 0; i--) {
		if ((__u32)i >= n)
			continue;
		if (off > PATH_LEN - NAME_SEG - 2)
			break;
		struct dentry *d = parts[i & (MAX_DEPTH - 1)];
		const unsigned char *name = BPF_CORE_READ(d, d_name.name);
		BOUND(off, 255);
		out[off] = '/';
		off++;
		BOUND(off, 255);
		long r = bpf_probe_read_kernel_str(&out[off], NAME_SEG, name);
		if (r > 0)
			off += r - 1;
	}
	if (off == 0) {
		out[0] = '/';
		off = 1;
	}
	out[off & (PATH_LEN - 1)] = 0;
	return off & (PATH_LEN - 1);
}

/* Does the path in `key->data` (len bytes, in a scratch slot; `key` overlays the 4 bytes before
 * it) match the sensitive list? `rkey` is scratch space for the wildcard remainder lookup. */
__noinline int match_sensitive(struct prefix_key *key, __u32 len, struct prefix_key *rkey, int is_write)
{
	if (!key || !rkey || len >= PATH_LEN)
		return 0;
	key->prefixlen = len * 8;
	struct prefix_val *v = bpf_map_lookup_elem(&prefixes, key);
	if (!v)
		return false;
	if (v->plain && (is_write || !v->write_only))
		return true;
	if (!v->group)
		return false;

	/* "prefix * rest": skip exactly one component, then look up the remainder */
	__u32 i = v->plen;
	bool found = false;
	for (int k = 0; k < NAME_SEG; k++) {
		if (i >= len)
			return false;
		if (key->data[i & (PATH_LEN - 1)] == '/') {
			found = true;
			break;
		}
		i++;
	}
	if (!found || i >= len)
		return false;
	__u32 rest = len - i;
	rkey->data[0] = v->group;
	BOUND(i, 255);
	bpf_probe_read_kernel(&rkey->data[1], PATH_LEN - 1, &key->data[i]);
	rkey->prefixlen = (rest + 1) * 8;
	__u32 *wo = bpf_map_lookup_elem(&rests, rkey);
	return wo && (is_write || !*wo);
}

/* ---------------------------------------------------------------- exec / exit */

static __always_inline __u8 fd_kind(struct file *f)
{
	if (!f)
		return 0;
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	umode_t mode = BPF_CORE_READ(inode, i_mode);
	switch (mode & S_IFMT) {
	case S_IFREG:
		return 1;
	case S_IFIFO:
		return 2;
	case S_IFCHR: {
		__u32 major = BPF_CORE_READ(inode, i_rdev) >> 20;
		if (major == 4 || major == 5 || (major >= 136 && major <= 143))
			return 3;
		return 6;
	}
	case S_IFSOCK: {
		struct socket *sock = BPF_CORE_READ(f, private_data);
		__u16 fam = BPF_CORE_READ(sock, sk, __sk_common.skc_family);
		if (fam == AF_INET || fam == AF_INET6)
			return 4;
		if (fam == AF_UNIX)
			return 5;
		return 6;
	}
	default:
		return 6;
	}
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct sensor_config *c = cfg();
	if (!c || (bpf_get_current_pid_tgid() >> 32) == c->self_tgid)
		return 0;
	struct ev_exec *ev = slot(SLOT_EXEC);
	if (!ev)
		return 0;

	struct task_struct *task = bpf_get_current_task_btf();
	ev->flags = 0;
	ev->writer_pid = 0;
	ev->writer_cgroup_id = 0;
	ev->written_ns_before = 0;
	ev->writer_comm[0] = 0;
	ev->parent_pid = BPF_CORE_READ(task, real_parent, tgid);
	bpf_probe_read_kernel_str(ev->parent_comm, COMM_LEN, BPF_CORE_READ(task, real_parent, comm));
	bpf_probe_read_kernel_str(ev->filename, PATH_LEN, BPF_CORE_READ(bprm, filename));

	/* stdio kinds */
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	for (int i = 0; i < 3; i++) {
		struct file *f = 0;
		if ((unsigned int)i < max)
			bpf_probe_read_kernel(&f, sizeof(f), &fds[i]);
		ev->stdio[i] = fd_kind(f);
	}
	ev->stdio[3] = 0;

	/* the executable: deleted, memfd, overlay upper layer, written since sensor start */
	struct file *exe = BPF_CORE_READ(bprm, file);
	struct inode *inode = BPF_CORE_READ(exe, f_inode);
	unsigned int nlink = BPF_CORE_READ(inode, __i_nlink);
	if (nlink == 0) {
		char name[8] = {};
		bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(exe, f_path.dentry, d_name.name));
		if (name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' &&
		    name[5] == ':')
			ev->flags |= EXEC_F_MEMFD;
		else
			ev->flags |= EXEC_F_DELETED;
	}
	if (BPF_CORE_READ(inode, i_sb, s_magic) == OVERLAYFS_SUPER_MAGIC) {
		struct ovl_inode *oi = (void *)inode - bpf_core_field_offset(struct ovl_inode, vfs_inode);
		if (BPF_CORE_READ(oi, __upperdentry))
			ev->flags |= EXEC_F_UPPER;
	}
	struct wkey k;
	inode_key(inode, &k);
	struct wval *w = bpf_map_lookup_elem(&written, &k);
	if (w) {
		ev->flags |= EXEC_F_WRITTEN;
		ev->writer_pid = w->pid;
		ev->writer_cgroup_id = w->cgroup_id;
		ev->written_ns_before = bpf_ktime_get_boot_ns() - w->ts;
		__builtin_memcpy(ev->writer_comm, w->comm, COMM_LEN);
	}

	/* bounded argv: one copy of the argument area */
	unsigned long as = BPF_CORE_READ(task, mm, arg_start);
	unsigned long ae = BPF_CORE_READ(task, mm, arg_end);
	__u32 len = ae > as ? ae - as : 0;
	__u32 cap = c->args_cap;
	if (cap > ARGS_CAP - 1)
		cap = ARGS_CAP - 1;
	if (len > cap) {
		len = cap;
		ev->flags |= EXEC_F_ARGS_TRUNC;
	}
	len &= ARGS_CAP - 1;
	if (len > 0 && bpf_probe_read_user(ev->args, len, (void *)as) != 0)
		len = 0;
	ev->args_len = len;

	__u32 size = offsetof(struct ev_exec, args) + len;
	if (size > sizeof(struct ev_exec))
		return 0;
	emit(ev, size, EV_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *p, bool group_dead)
{
	if (!group_dead || is_self())
		return 0;
	struct ev_exit ev = {};
	int code = BPF_CORE_READ(p, exit_code);
	ev.exit_code = (code & 0x7f) ? 128 + (code & 0x7f) : (code >> 8) & 0xff;
	emit(&ev, sizeof(ev), EV_EXIT);
	return 0;
}

/* ---------------------------------------------------------------- syscalls */

#define AT_FDCWD -100
#define O_ACCMODE 3
#define O_CREAT 0100
#define O_TRUNC 01000

#define NR_open 2
#define NR_connect 42
#define NR_accept 43
#define NR_sendto 44
#define NR_sendmsg 46
#define NR_clone 56
#define NR_creat 85
#define NR_unlink 87
#define NR_chmod 90
#define NR_fchmod 91
#define NR_ptrace 101
#define NR_mount 165
#define NR_init_module 175
#define NR_openat 257
#define NR_unlinkat 263
#define NR_fchmodat 268
#define NR_unshare 272
#define NR_accept4 288
#define NR_sendmmsg 307
#define NR_setns 308
#define NR_finit_module 313
#define NR_memfd_create 319
#define NR_fsopen 430
#define NR_clone3 435
#define NR_openat2 437
#define NR_fchmodat2 452

static __always_inline void sk_local(struct sock *sk, struct ev_sock *ev, __u16 family)
{
	ev->src_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (family == AF_INET)
		bpf_probe_read_kernel(ev->src, 4, &sk->__sk_common.skc_rcv_saddr);
	else
		bpf_probe_read_kernel(ev->src, 16, &sk->__sk_common.skc_v6_rcv_saddr);
}

static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if (fd < 0 || fd >= max)
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline struct sock *fd_sock(struct task_struct *task, long fd)
{
	struct file *f = fd_file(task, fd);
	if (!f)
		return 0;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk);
}

/* Absolute path for a (dirfd, user path) pair: the user string when it is absolute, else the
 * directory's path (cwd for AT_FDCWD, from the dentry walk) + "/" + the user string. `out` has
 * PATH_LEN bytes plus slack. Returns the length (no NUL), 0 when nothing could be read. */
__noinline int resolve_user_path(long dirfd, __u64 upath_p, struct pbuf *buf)
{
	const char *upath = (const char *)upath_p;
	if (!buf)
		return 0;
	char *out = buf->d;
	char c = 0;
	if (!upath || bpf_probe_read_user(&c, 1, upath) != 0)
		return 0;
	if (c == '/') {
		long n = bpf_probe_read_user_str(out, PATH_LEN, upath);
		return n > 1 ? (n - 1) & (PATH_LEN - 1) : 0;
	}
	struct task_struct *task = bpf_get_current_task_btf();
	struct dentry *d;
	struct vfsmount *m;
	if ((int)dirfd == AT_FDCWD) {
		d = BPF_CORE_READ(task, fs, pwd.dentry);
		m = BPF_CORE_READ(task, fs, pwd.mnt);
	} else {
		struct file *f = fd_file(task, (int)dirfd);
		if (!f)
			return 0;
		d = BPF_CORE_READ(f, f_path.dentry);
		m = BPF_CORE_READ(f, f_path.mnt);
	}
	__u32 b = build_path((__u64)d, (__u64)m, buf);
	/* "./name" is "name" */
	char c2 = 0;
	bpf_probe_read_user(&c2, 1, upath + 1);
	if (c == '.' && c2 == '/')
		upath += 2;
	if (b > 1) {
		out[b & (PATH_LEN - 1)] = '/';
		b++;
	}
	if (b > PATH_LEN - 2 * NAME_SEG)
		return b & (PATH_LEN - 1);
	BOUND(b, 255);
	long n = bpf_probe_read_user_str(&out[b], 2 * NAME_SEG, upath);
	if (n > 1)
		b += n - 1;
	return b & (PATH_LEN - 1);
}

__noinline __u64 path_hash(struct pbuf *buf, __u32 len)
{
	if (!buf)
		return 0;
	const char *p = buf->d;
	__u64 h = 0xcbf29ce484222325ULL;
	for (int i = 0; i < PATH_LEN; i++) {
		if ((__u32)i >= len)
			break;
		h ^= (__u8)p[i & (PATH_LEN - 1)];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Sends a path record: its size is the fixed part plus the path and its NUL. */
static __always_inline void emit_path(struct ev_path *ev, __u32 len, __u32 kind)
{
	__u32 size = offsetof(struct ev_path, path) + len + 1;
	if (size > sizeof(struct ev_path))
		return;
	emit(ev, size, kind);
}

static __always_inline bool open_writes(__u64 flags)
{
	return (flags & O_ACCMODE) != 0 || (flags & (O_CREAT | O_TRUNC)) != 0;
}

static __noinline int on_open(long dirfd, const char *upath, __u64 flags)
{
	struct ev_path *ev = slot(SLOT_ENTER);
	if (!ev)
		return 0;
	__u32 len = resolve_user_path(dirfd, (__u64)upath, (struct pbuf *)ev->path);
	if (len == 0)
		return 0;
	if (open_writes(flags)) {
		__u64 h = path_hash((struct pbuf *)ev->path, len), now = bpf_ktime_get_boot_ns();
		bpf_map_update_elem(&written_paths, &h, &now, BPF_ANY);
	}
	if (!match_sensitive((struct prefix_key *)&ev->extra, len, (void *)ev + REST_KEY_OFF,
			     open_writes(flags))) {
		count(CNT_FILTERED + EV_OPEN);
		return 0;
	}
	ev->extra = 0;
	ev->flags = flags;
	emit_path(ev, len, EV_OPEN);
	return 0;
}

static __noinline int on_unlink(long dirfd, const char *upath)
{
	struct ev_path *ev = slot(SLOT_ENTER);
	if (!ev)
		return 0;
	__u32 len = resolve_user_path(dirfd, (__u64)upath, (struct pbuf *)ev->path);
	if (len == 0)
		return 0;
	if (!match_sensitive((struct prefix_key *)&ev->extra, len, (void *)ev + REST_KEY_OFF, 1)) {
		count(CNT_FILTERED + EV_UNLINK);
		return 0;
	}
	ev->extra = 0;
	ev->flags = 0;
	emit_path(ev, len, EV_UNLINK);
	return 0;
}

/* chmod adding an execute bit. fd form: old mode and inode known; path form: mode has x bits. */
static __noinline int on_chmod(long fd, long dirfd, const char *upath, __u32 mode)
{
	if (!(mode & 0111)) {
		count(CNT_FILTERED + EV_CHMOD);
		return 0;
	}
	struct ev_path *ev = slot(SLOT_ENTER);
	if (!ev)
		return 0;
	__u32 len = 0, recent = 0;
	if (fd >= 0) {
		struct file *f = fd_file(bpf_get_current_task_btf(), fd);
		if (!f)
			return 0;
		struct inode *inode = BPF_CORE_READ(f, f_inode);
		umode_t old = BPF_CORE_READ(inode, i_mode);
		if ((old & S_IFMT) != S_IFREG || !(mode & 0111 & ~old)) {
			count(CNT_FILTERED + EV_CHMOD);
			return 0;
		}
		struct wkey k;
		inode_key(inode, &k);
		recent = bpf_map_lookup_elem(&written, &k) ? 1 : 0;
		mark_written(inode);
		len = build_path((__u64)BPF_CORE_READ(f, f_path.dentry), (__u64)BPF_CORE_READ(f, f_path.mnt), (struct pbuf *)ev->path);
	} else {
		len = resolve_user_path(dirfd, (__u64)upath, (struct pbuf *)ev->path);
		if (len == 0)
			return 0;
		__u64 h = path_hash((struct pbuf *)ev->path, len);
		recent = bpf_map_lookup_elem(&written_paths, &h) ? 1 : 0;
	}
	ev->flags = mode;
	ev->extra = recent;
	emit_path(ev, len, EV_CHMOD);
	return 0;
}

static __noinline int on_connect(long fd, const void *uaddr)
{
	__u16 family = 0;
	if (!uaddr || bpf_probe_read_user(&family, 2, uaddr) != 0)
		return 0;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	struct ev_sock *ev = slot(SLOT_ENTER);
	if (!ev)
		return 0;
	__builtin_memset(ev->src, 0, 32);
	ev->family = family;
	ev->payload_len = 0;
	struct sock *sk = fd_sock(bpf_get_current_task_btf(), fd);
	ev->protocol = sk ? BPF_CORE_READ(sk, sk_protocol) : 0;
	if (family == AF_INET) {
		struct sockaddr_in in = {};
		bpf_probe_read_user(&in, sizeof(in), uaddr);
		ev->dst_port = bpf_ntohs(in.sin_port);
		__builtin_memcpy(ev->dst, &in.sin_addr, 4);
	} else {
		struct sockaddr_in6 in6 = {};
		bpf_probe_read_user(&in6, sizeof(in6), uaddr);
		ev->dst_port = bpf_ntohs(in6.sin6_port);
		__builtin_memcpy(ev->dst, &in6.sin6_addr, 16);
	}
	if (sk)
		sk_local(sk, ev, family);
	__u32 size = offsetof(struct ev_sock, payload);
	emit(ev, size, EV_CONNECT);
	return 0;
}

/* A datagram to the DNS port: where it goes (sendto/sendmsg address or the connected peer) and
 * the start of the message (header + question). */
static __noinline int on_send(long fd, const void *uaddr, const void *buf, __u64 buflen)
{
	struct sensor_config *c = cfg();
	if (!c)
		return 0;
	struct sock *sk = fd_sock(bpf_get_current_task_btf(), fd);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != 17)
		return 0;
	__u16 family = 0, port = 0;
	if (uaddr) {
		struct sockaddr_in in = {};
		bpf_probe_read_user(&in, sizeof(in), uaddr);
		family = in.sin_family;
		port = in.sin_port; /* same offset in sockaddr_in6 */
	} else {
		family = BPF_CORE_READ(sk, __sk_common.skc_family);
		port = BPF_CORE_READ(sk, __sk_common.skc_dport);
	}
	if (bpf_ntohs(port) != c->dns_port || (family != AF_INET && family != AF_INET6))
		return 0;
	struct ev_sock *ev = slot(SLOT_ENTER);
	if (!ev)
		return 0;
	__builtin_memset(ev->src, 0, 32);
	ev->family = family;
	ev->protocol = 17;
	ev->dst_port = bpf_ntohs(port);
	if (uaddr) {
		if (family == AF_INET)
			bpf_probe_read_user(ev->dst, 4, uaddr + offsetof(struct sockaddr_in, sin_addr));
		else
			bpf_probe_read_user(ev->dst, 16, uaddr + offsetof(struct sockaddr_in6, sin6_addr));
	} else if (family == AF_INET) {
		bpf_probe_read_kernel(ev->dst, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_probe_read_kernel(ev->dst, 16, &sk->__sk_common.skc_v6_daddr);
	}
	sk_local(sk, ev, family);
	__u32 len = buflen > DNS_CAP ? DNS_CAP : buflen;
	len &= 2 * DNS_CAP - 1;
	if (len > DNS_CAP)
		len = DNS_CAP;
	if (!buf || len == 0 || bpf_probe_read_user(ev->payload, len, buf) != 0)
		len = 0;
	ev->payload_len = len;
	__u32 size = offsetof(struct ev_sock, payload) + len;
	if (size > sizeof(struct ev_sock))
		return 0;
	emit(ev, size, EV_DNS);
	return 0;
}

static __always_inline int on_sendmsg(long fd, const struct user_msghdr *umsg)
{
	struct user_msghdr m = {};
	struct iovec iov = {};
	if (!umsg || bpf_probe_read_user(&m, sizeof(m), umsg) != 0)
		return 0;
	if (m.msg_iov && m.msg_iovlen > 0)
		bpf_probe_read_user(&iov, sizeof(iov), m.msg_iov);
	return on_send(fd, m.msg_name, iov.iov_base, iov.iov_len);
}

/* requests that take control of or modify another process */
static __always_inline bool ptrace_interesting(long req)
{
	return req == 0 /* TRACEME */ || req == 4 || req == 5 || req == 6 /* POKE* */ ||
	       req == 13 || req == 15 /* SETREGS, SETFPREGS */ || req == 16 /* ATTACH */ ||
	       req == 0x4205 /* SETREGSET */ || req == 0x4206 /* SEIZE */;
}

static __noinline int on_ptrace(long req, long pid)
{
	if (!ptrace_interesting(req)) {
		count(CNT_FILTERED + EV_PTRACE);
		return 0;
	}
	struct ev_ptrace ev = {};
	ev.request = req;
	ev.target_pid = pid;
	emit(&ev, sizeof(ev), EV_PTRACE);
	return 0;
}

static __noinline int on_namespace(__u64 flags, __u32 syscall)
{
	if (syscall != NS_SETNS) {
		flags &= NS_FLAGS_MASK;
		if (!flags) {
			count(CNT_FILTERED + EV_NAMESPACE);
			return 0;
		}
	}
	struct ev_ns ev = {};
	ev.flags = flags;
	ev.syscall = syscall;
	emit(&ev, sizeof(ev), EV_NAMESPACE);
	return 0;
}

static __noinline int on_mount(const char *src, const char *target, const char *fstype, __u64 flags)
{
	struct ev_mount *ev = slot(SLOT_ENTER);
	if (!ev)
		return 0;
	ev->flags = flags;
	ev->source[0] = 0;
	ev->fstype[0] = 0;
	if (src)
		bpf_probe_read_user_str(ev->source, PATH_LEN, src);
	if (fstype)
		bpf_probe_read_user_str(ev->fstype, FSTYPE_LEN, fstype);
	ev->target[0] = 0;
	if (target)
		resolve_user_path(AT_FDCWD, (__u64)target, (struct pbuf *)ev->target);
	emit(ev, sizeof(*ev), EV_MOUNT);
	return 0;
}

static __noinline int on_memfd(const char *uname, __u32 flags)
{
	struct ev_memfd *ev = slot(SLOT_ENTER);
	if (!ev)
		return 0;
	ev->flags = flags;
	ev->name[0] = 0;
	if (uname)
		bpf_probe_read_user_str(ev->name, NAME_LEN, uname);
	emit(ev, sizeof(*ev), EV_MEMFD);
	return 0;
}

static __noinline int on_module(long fd, __u32 syscall)
{
	struct sensor_config *c = cfg();
	if (!c || !c->modules_enabled)
		return 0;
	struct ev_module *ev = slot(SLOT_ENTER);
	if (!ev)
		return 0;
	ev->syscall = syscall;
	ev->name[0] = 0;
	if (syscall == 2) {
		struct file *f = fd_file(bpf_get_current_task_btf(), fd);
		if (f)
			bpf_probe_read_kernel_str(ev->name, NAME_LEN, BPF_CORE_READ(f, f_path.dentry, d_name.name));
	}
	emit(ev, sizeof(*ev), EV_MODULE);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(handle_sys_enter, struct pt_regs *regs, long id)
{
	switch (id) {
	case NR_open: case NR_openat: case NR_openat2: case NR_creat:
	case NR_unlink: case NR_unlinkat:
	case NR_chmod: case NR_fchmod: case NR_fchmodat: case NR_fchmodat2:
	case NR_connect: case NR_sendto: case NR_sendmsg: case NR_sendmmsg:
	case NR_ptrace: case NR_unshare: case NR_setns: case NR_clone: case NR_clone3:
	case NR_mount: case NR_fsopen: case NR_memfd_create:
	case NR_init_module: case NR_finit_module:
		break;
	default:
		return 0;
	}
	if (is_self())
		return 0;
	/* tp_btf: `regs` is a trusted kernel pointer, read directly (no helper call per syscall). */
	long a0 = regs->di, a1 = regs->si;
	long a2 = regs->dx, a3 = regs->r10;
	long a4 = regs->r8;

	switch (id) {
	case NR_open:
		return on_open(AT_FDCWD, (const char *)a0, a1);
	case NR_creat:
		return on_open(AT_FDCWD, (const char *)a0, O_CREAT | O_TRUNC | 1);
	case NR_openat:
		return on_open(a0, (const char *)a1, a2);
	case NR_openat2: {
		__u64 fl = 0;
		bpf_probe_read_user(&fl, sizeof(fl), (void *)a2);
		return on_open(a0, (const char *)a1, fl);
	}
	case NR_unlink:
		return on_unlink(AT_FDCWD, (const char *)a0);
	case NR_unlinkat:
		return on_unlink(a0, (const char *)a1);
	case NR_chmod:
		return on_chmod(-1, AT_FDCWD, (const char *)a0, a1);
	case NR_fchmod:
		return on_chmod(a0, 0, 0, a1);
	case NR_fchmodat:
	case NR_fchmodat2:
		return on_chmod(-1, a0, (const char *)a1, a2);
	case NR_connect:
		return on_connect(a0, (const void *)a1);
	case NR_sendto:
		return on_send(a0, (const void *)a4, (const void *)a1, a2);
	case NR_sendmsg:
		return on_sendmsg(a0, (const struct user_msghdr *)a1);
	case NR_sendmmsg: /* the first message (struct mmsghdr starts with its msghdr) */
		return on_sendmsg(a0, (const struct user_msghdr *)a1);
	case NR_ptrace:
		return on_ptrace(a0, a1);
	case NR_unshare:
		return on_namespace(a0, NS_UNSHARE);
	case NR_setns:
		return on_namespace(a1, NS_SETNS);
	case NR_clone:
		return on_namespace(a0, NS_CLONE);
	case NR_clone3: {
		__u64 fl = 0;
		bpf_probe_read_user(&fl, sizeof(fl), (void *)a0);
		return on_namespace(fl, NS_CLONE);
	}
	case NR_mount:
		return on_mount((const char *)a0, (const char *)a1, (const char *)a2, a3);
	case NR_fsopen:
		return on_mount(0, 0, (const char *)a0, 0);
	case NR_memfd_create:
		return on_memfd((const char *)a0, a1);
	case NR_init_module:
		return on_module(-1, 1);
	case NR_finit_module:
		return on_module(a0, 2);
	}
	return 0;
}

static __noinline int on_accept(long fd)
{
	struct sock *sk = fd_sock(bpf_get_current_task_btf(), fd);
	if (!sk)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	struct ev_sock *ev = slot(SLOT_EXIT);
	if (!ev)
		return 0;
	__builtin_memset(ev->src, 0, 32);
	ev->family = family;
	ev->protocol = BPF_CORE_READ(sk, sk_protocol);
	ev->payload_len = 0;
	/* accepted connection: src = the remote peer, dst = the local (listening) end */
	ev->dst_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev->src_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		bpf_probe_read_kernel(ev->dst, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_probe_read_kernel(ev->src, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_probe_read_kernel(ev->dst, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_probe_read_kernel(ev->src, 16, &sk->__sk_common.skc_v6_daddr);
	}
	__u32 size = offsetof(struct ev_sock, payload);
	emit(ev, size, EV_ACCEPT);
	return 0;
}

/* a successful open for write: remember the inode (binary drift at exec) */
static __noinline int on_open_done(long fd)
{
	struct file *f = fd_file(bpf_get_current_task_btf(), fd);
	if (!f)
		return 0;
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	if ((BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFREG)
		return 0;
	mark_written(inode);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(handle_sys_exit, struct pt_regs *regs, long ret)
{
	if (ret < 0)
		return 0;
	long id = regs->orig_ax;
	__u64 flags;
	switch (id) {
	case NR_accept:
	case NR_accept4:
		if (is_self())
			return 0;
		return on_accept(ret);
	case NR_creat:
		flags = 1;
		break;
	case NR_open:
		flags = regs->si;
		break;
	case NR_openat:
		flags = regs->dx;
		break;
	case NR_openat2: {
		flags = 0;
		bpf_probe_read_user(&flags, sizeof(flags), (void *)regs->dx);
		break;
	}
	default:
		return 0;
	}
	if (!open_writes(flags) || is_self())
		return 0;
	return on_open_done(ret);
}
