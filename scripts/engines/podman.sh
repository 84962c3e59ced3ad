#!/usr/bin/env bash
# Podman (with runc) for Conveyor's image steps, and the base image its tests run:
# `local/conveyor-base`, built once from `debootstrap --variant=minbase bookworm` (no
# registry is reachable here) and kept in a storage under the cache directory.
# Podman has no daemon: `up` checks that a container starts. Nothing creates podman's
# bridge network; Conveyor runs containers with `--network none` (a run with services: in
# a pod of its own, whose network holds only its loopback).
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENGINE=podman
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
    cat <<'EOF'
usage: scripts/engines/podman.sh {install|up|down|status|env}
  install  apt-get install podman runc fuse-overlayfs catatonit (when missing); write the
           configuration; build the base image local/conveyor-base once (cached)
  up       install, then check that a container of the base image runs
  down     remove containers and pods Conveyor left behind (label conveyor.run); the image stays
  status   exit 0 with a one-line summary when podman runs the base image
  env      print export lines: eval "$(scripts/engines/podman.sh env)"
environment: CONVEYOR_ENGINES_HOME (cache, default ~/.cache/conveyor-engines),
  CONVEYOR_PODMAN_IMAGE (base image name, default local/conveyor-base)
EOF
}

PM="$ENGINES_HOME/podman"
IMAGE="${CONVEYOR_PODMAN_IMAGE:-local/conveyor-base}"
SUITE=bookworm
# Our configuration and storage, not the machine's: everything lives in the cache.
export CONTAINERS_CONF="$PM/containers.conf"
export CONTAINERS_STORAGE_CONF="$PM/storage.conf"

write_config() {
    mkdir -p "$PM/storage" "$PM/run"
    # crun fails on these hosts (cgroups in hybrid mode); cgroupfs: there is no systemd.
    cat >"$CONTAINERS_CONF.tmp" <<'EOF'
[containers]
netns = "none"
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
    cat >"$CONTAINERS_STORAGE_CONF.tmp" <<EOF
[storage]
driver = "overlay"
graphroot = "$PM/storage"
runroot = "$PM/run"
EOF
    mv "$CONTAINERS_STORAGE_CONF.tmp" "$CONTAINERS_STORAGE_CONF"
}

# Never rm -r through a mount: debootstrap mounts /proc (and maybe /sys) in the rootfs
# and a failed run can leave them. Unmount, deepest first, and check before removing.
remove_rootfs() {
    local dir="$1" real m
    [ -e "$dir" ] || return 0
    real="$(realpath -m "$dir")"
    for _ in 1 2; do
        awk -v r="$real" 'index($5, r "/") == 1 {print $5}' /proc/self/mountinfo | sort -r \
            | while IFS= read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    done
    if awk -v r="$real" 'index($5, r "/") == 1 {found=1} END {exit !found}' /proc/self/mountinfo; then
        die "still mounted under $dir; unmount it by hand before retrying"
    fi
    rm -rf "$dir"
}

build_image() {
    local t0=$SECONDS rootfs="$PM/rootfs.partial" mirror
    command -v debootstrap >/dev/null || apt_install_host debootstrap
    mirror="$(debian_mirror)"
    remove_rootfs "$rootfs"
    log "debootstrap $SUITE into $rootfs (about 40 s, once)"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$PM/debootstrap.log" 2>&1 </dev/null \
        || die "debootstrap failed, see $PM/debootstrap.log"
    # A smaller image: no package lists or caches.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null \
        || die "podman import failed"
    remove_rootfs "$rootfs"
    log "built $IMAGE in $((SECONDS - t0)) s"
}

cmd_install() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v fuse-overlayfs >/dev/null || missing+=(fuse-overlayfs)
    # the init of a pod's infra container: a run's services and steps share a pod
    [ -x /usr/libexec/podman/catatonit ] || command -v catatonit >/dev/null || missing+=(catatonit)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        apt_install_host "${missing[@]}"
    fi
    write_config
    if podman image exists "$IMAGE" 2>/dev/null; then
        log "$IMAGE already built ($(podman image inspect --format '{{.Id}}' "$IMAGE" | cut -c1-12))"
    else
        build_image
    fi
}

runs() { podman run --rm --network none "$IMAGE" true >/dev/null 2>&1; }

cmd_up() {
    local t0=$SECONDS
    cmd_install
    runs || die "podman cannot run $IMAGE; try: podman run --rm --network none $IMAGE true"
    log "up in $((SECONDS - t0)) s: podman $(podman version --format '{{.Client.Version}}'), image $IMAGE"
}

cmd_down() {
    if command -v podman >/dev/null && [ -f "$CONTAINERS_CONF" ]; then
        podman ps -aq --filter label=conveyor.run | xargs -r podman rm -f >/dev/null 2>&1 || true
        podman pod ps -q --filter label=conveyor.run | xargs -r podman pod rm -f >/dev/null 2>&1 || true
    fi
    log "down"
}

cmd_status() {
    if command -v podman >/dev/null && [ -f "$CONTAINERS_CONF" ] && runs; then
        echo "podman: up, $(podman version --format '{{.Client.Version}}'), image $IMAGE, storage $PM/storage"
        return 0
    fi
    echo "podman: down"
    return 1
}

cmd_env() {
    cat <<EOF
export CONTAINERS_CONF=$CONTAINERS_CONF
export CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF
export CONVEYOR_TEST_PODMAN_IMAGE=$IMAGE
EOF
}

engine_main "$@"
