# jobctl-sandbox: the init-side half of the throwaway systemd.
#
# Runs as PID 1 of fresh PID, mount, UTS, IPC, network and cgroup namespaces
# (started by `unshare`, see lib.rs). It builds a private root — an overlay
# whose lower layer is the host's `/` and whose upper layer lives in a tmpfs
# that exists only in this mount namespace — pivots into it, checks that it
# really did, and only then execs systemd.
#
# DANGER: systemd booted on the host's real root empties /tmp and writes /etc
# and /var. Every step below exits on failure (set -e) and the checks at the
# end refuse to exec systemd unless the root is the private overlay.
#
# Arguments: STATE_DIR TOKEN HOST_MNT_NS NAME [SHARED_DIR...]
set -eu

fail() {
    echo "jobctl-sandbox: refusing to boot systemd: $*" >&2
    exit 90
}

state=$1
token=$2
host_mnt_ns=$3
name=$4
shift 4

# 0. We must be PID 1 of a new PID namespace, in a new mount namespace.
[ "$$" = 1 ] || fail "not PID 1 of a new PID namespace (pid $$)"
[ "$(readlink /proc/self/ns/mnt)" != "$host_mnt_ns" ] || fail "still in the host's mount namespace"
# Nothing we mount may propagate back to the host.
mount --make-rprivate /

# 1. A tmpfs that exists only in this mount namespace holds the overlay's
#    upper and work layers: every write systemd makes to / lands there.
m=$state/mnt
mount -t tmpfs -o mode=0755 jobctl-sandbox "$m"
mkdir "$m/upper" "$m/work" "$m/root"
mount -t overlay -o "lowerdir=/,upperdir=$m/upper,workdir=$m/work" jobctl-sandbox-root "$m/root"
r=$m/root

# 2. A fresh /proc for the new PID namespace. /proc/sys and sysrq-trigger are
#    read-only so boot services cannot change the host kernel's settings
#    (systemd-sysctl.service skips itself on a read-only /proc/sys).
mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
mount --bind "$r/proc/sys" "$r/proc/sys"
mount -o remount,bind,ro,nosuid,nodev,noexec "$r/proc/sys"
if [ -e "$r/proc/sysrq-trigger" ]; then
    mount --bind "$r/proc/sysrq-trigger" "$r/proc/sysrq-trigger"
    mount -o remount,bind,ro "$r/proc/sysrq-trigger"
fi

# 3. /sys from the host, its top read-only (udevd and friends skip themselves
#    on a read-only /sys, so host devices are never re-triggered), and a fresh
#    cgroup2 hierarchy rooted at this sandbox's own cgroup (the cgroup
#    namespace makes it the root), so systemd's cgroups stay inside it.
mount --rbind /sys "$r/sys"
mount -o remount,bind,ro,nosuid,nodev,noexec "$r/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$r/sys/fs/cgroup"

# 4. A private /dev with only the harmless device nodes. A bind of the host's
#    /dev would let tmpfiles and udev rules change host device nodes, and a
#    getty could attach to the host's console.
mount -t tmpfs -o mode=0755,nosuid jobctl-sandbox-dev "$r/dev"
for node in null zero full random urandom tty; do
    touch "$r/dev/$node"
    mount --bind "/dev/$node" "$r/dev/$node"
done
mkdir "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev jobctl-sandbox-shm "$r/dev/shm"
ln -s /proc/self/fd "$r/dev/fd"
ln -s /proc/self/fd/0 "$r/dev/stdin"
ln -s /proc/self/fd/1 "$r/dev/stdout"
ln -s /proc/self/fd/2 "$r/dev/stderr"

# 5. The folders the tests share with the sandbox (the build output, a scratch
#    folder), at the same paths inside as outside.
for dir in "$@"; do
    mkdir -p "$r$dir"
    mount --bind "$dir" "$r$dir"
done

# 6. Units masked for this sandbox only (written into the overlay's upper layer).
if [ -n "${JOBCTL_SANDBOX_MASK:-}" ]; then
    mkdir -p "$r/etc/systemd/system"
    for unit in $JOBCTL_SANDBOX_MASK; do
        ln -sf /dev/null "$r/etc/systemd/system/$unit"
    done
fi

# 7. pivot_root into the overlay and drop the host's root entirely.
[ ! -e /.jobctl-sandbox ] || fail "the host's / already has a /.jobctl-sandbox marker"
printf '%s\n' "$token" >"$r/.jobctl-sandbox"
mkdir "$r/.oldroot"
cd "$r"
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot

# 8. Verify, then boot. The marker holds a token only this boot knows, and it
#    exists only in the overlay's upper layer; / must be an overlay mount.
[ "$(cat /.jobctl-sandbox)" = "$token" ] || fail "/ is not the sandbox root (marker token mismatch)"
root_fs=$(awk '$5 == "/" { for (i = 7; i <= NF; i++) if ($i == "-") fs = $(i + 1) } END { print fs }' /proc/self/mountinfo)
[ "$root_fs" = overlay ] || fail "/ is a '$root_fs' mount, not the overlay"
if grep -q ' /.oldroot ' /proc/self/mountinfo; then fail "the host's root is still mounted"; fi
[ "$$" = 1 ] || fail "not PID 1"

hostname "$name" 2>/dev/null || true
# Without CAP_SYS_MODULE and CAP_SYS_TIME nothing in the sandbox can load
# kernel modules or set the host's clock (both are global, not namespaced).
exec setpriv --bounding-set=-sys_module,-sys_time \
    env -i container=jobctl-sandbox \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --system --unit=multi-user.target
