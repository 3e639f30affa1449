#!/usr/bin/env bash
# Build the Ferrostack test guest image (a small qcow2, like cirros) from
# Debian packages only.  See tools/guest-image/README.md.
#
#   tools/guest-image/build.sh OUT.qcow2
#
# Environment:
#   FERROSTACK_GUEST_CACHE    where downloaded .debs are kept
#                             (default ${XDG_CACHE_HOME:-~/.cache}/ferrostack/guest-debs)
#   FERROSTACK_GUEST_SIZE_MB  virtual disk size in MiB (default 512; the
#                             m1.tiny flavor's root disk is 1 GiB)
#   FERROSTACK_GUEST_APPEND   extra kernel command line (e.g. "ferrostack.debug
#                             printk.time=1", or "rdshell")
#
# No root needed and no loop mounts: packages are unpacked with dpkg-deb -x,
# the root filesystem is made with mkfs.ext4 -d in a file, put behind an
# MBR partition table with sfdisk and dd, and GRUB's boot.img/core.img are
# written around it.  As root, missing host tools are installed with apt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${FERROSTACK_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrostack/guest-debs}
SIZE_MB=${FERROSTACK_GUEST_SIZE_MB:-512}
# Timestamps and ids inside the image are fixed, so that two builds from
# the same packages give the same filesystem.
EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
FS_UUID=7e0a5b1c-6f3d-4c2e-9b8a-0f57a65e5c01
FS_HASH_SEED=0c9d1f0e-2a4b-4f6c-8d1e-3b5a7c9e1f20
DISK_ID=0x46535447          # "FSTG"
ROOT_LABEL=ferrostack-root

# The cloud kernel flavour: its metapackage's dependency names the real,
# versioned kernel package.
KERNEL_META=linux-image-cloud-amd64
# What the guest runs: busybox for everything but SSH; dropbear for SSH
# and the libraries dropbear links against (checked below with ld.so).
GUEST_PKGS=(busybox-static dropbear-bin)
GUEST_LIB_PKGS=(libc6 zlib1g libcrypt1 libtomcrypt1 libtommath1 libgmp10)
# Only unpacked on the build host: GRUB's i386-pc images and grub-mkimage
# (and the one library of grub-mkimage a minimal host may lack).
HOST_PKGS=(grub-pc-bin grub-common libdevmapper1.02.1)

# Modules the initramfs loads at boot.  Debian's cloud kernel builds ext4,
# the 8250 serial port and the i8042 keyboard in, but these are modules:
# virtio (disk, network, rng, balloon, SCSI), the IDE/ATA controller and
# cdrom a config drive is attached to, ISO 9660, and the ACPI power button
# with the evdev interface acpid reads it from.  Dependencies (virtio_ring,
# virtio_pci_{legacy,modern}_dev, failover, net_failover, libata,
# scsi_mod, cdrom, ...) come from modules.dep.
BOOT_MODULES=(virtio_pci virtio_blk virtio_net virtio_scsi sd_mod ata_piix
    sr_mod isofs evdev button virtio_rng virtio_balloon)
# On the root filesystem only, for modprobe (or the kernel's module
# autoloading) later: VLANs, VFAT config drives and volumes, tun.
EXTRA_MODULES=(8021q vfat nls_cp437 nls_iso8859_1 nls_utf8 tun)

log() { printf '%s\n' "build.sh: $*" >&2; }
die() { printf '%s\n' "build.sh: error: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 OUT.qcow2" >&2
    exit 2
}

# Host tools, as command:Debian package.
HOST_TOOLS=(mkfs.ext4:e2fsprogs debugfs:e2fsprogs sfdisk:fdisk depmod:kmod
    modprobe:kmod qemu-img:qemu-utils cpio:cpio xz:xz-utils dpkg-deb:dpkg apt-get:apt gzip:gzip)

ensure_host_tools() {
    local missing=() entry cmd pkg
    for entry in "${HOST_TOOLS[@]}"; do
        cmd=${entry%%:*} pkg=${entry#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [ "$(id -u)" -ne 0 ]; then
        die "missing host tools; install the Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
    fi
    log "installing host packages: ${missing[*]}"
    apt_lists_ready
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# apt must know the packages (its lists are filled by apt-get update).
APT_CHECKED=
apt_lists_ready() {
    [ -n "$APT_CHECKED" ] && return 0
    APT_CHECKED=1
    if ! apt-cache show "$KERNEL_META" >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ]; then
            log "apt knows no $KERNEL_META; running apt-get update"
            apt-get update -q >&2
        fi
    fi
}

# load_candidates PKG...: the versions apt would download, into CANDIDATE
# (one apt-cache call: each takes most of a second).
declare -A CANDIDATE=()
load_candidates() {
    local pkg ver
    while read -r pkg ver; do
        CANDIDATE[$pkg]=$ver
    done < <(apt-cache policy "$@" 2>/dev/null | awk '
        /^[^ ]/ { pkg = $1; sub(/:$/, "", pkg) }
        $1 == "Candidate:" && $2 != "(none)" { print pkg, $2 }')
}

# candidate PKG: the version apt would download, empty if apt does not know.
candidate() { echo "${CANDIDATE[$1]:-}"; }

# cached_deb PKG [VERSION]: the cached .deb, the newest one if no version.
cached_deb() {
    local pkg=$1 ver=${2:-} f
    if [ -n "$ver" ]; then
        # apt-get download writes an epoch's ":" as "%3a".
        for f in "$CACHE/${pkg}_${ver//:/%3a}_"*.deb; do
            [ -f "$f" ] && { echo "$f"; return 0; }
        done
        return 1
    fi
    f=$(ls "$CACHE/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n1)
    [ -n "$f" ] && echo "$f"
}

# fetch PKG: print the path of PKG's .deb, downloading it into the cache
# unless the candidate version is there already.  Without apt lists
# (offline) the newest cached .deb is used.
fetch() {
    local pkg=$1 ver f
    ver=$(candidate "$pkg")
    if [ -z "$ver" ]; then
        f=$(cached_deb "$pkg") && [ -n "$f" ] && { echo "$f"; return 0; }
        apt_lists_ready
        load_candidates "$pkg"
        ver=$(candidate "$pkg")
        [ -n "$ver" ] || die "apt knows no package $pkg (run apt-get update as root)"
    fi
    if ! f=$(cached_deb "$pkg" "$ver"); then
        log "downloading $pkg $ver"
        local opts=()
        # apt drops privileges to _apt for downloads, and _apt cannot write
        # into root's home; as root, download as root.
        [ "$(id -u)" -eq 0 ] && opts=(-o APT::Sandbox::User=root)
        (cd "$CACHE" && apt-get download -q "${opts[@]}" "$pkg=$ver" >&2) ||
            die "apt-get download $pkg=$ver failed"
        f=$(cached_deb "$pkg" "$ver") || die "apt-get download $pkg left no .deb in $CACHE"
    fi
    echo "$f"
}

# The versioned kernel package (linux-image-6.1.0-NN-cloud-amd64) that the
# metapackage depends on; offline, the newest cached one.
kernel_package() {
    local pkg
    pkg=$(apt-cache depends "$KERNEL_META" 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-cloud-amd64$/ { print $2; exit }')
    if [ -z "$pkg" ]; then
        pkg=$(ls "$CACHE"/linux-image-[0-9]*-cloud-amd64_*.deb 2>/dev/null | sort -V | tail -n1)
        pkg=${pkg##*/}
        pkg=${pkg%%_*}
    fi
    if [ -z "$pkg" ]; then
        apt_lists_ready
        pkg=$(apt-cache depends "$KERNEL_META" 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-cloud-amd64$/ { print $2; exit }')
    fi
    [ -n "$pkg" ] || die "cannot resolve $KERNEL_META to a kernel package (run apt-get update as root)"
    echo "$pkg"
}

# unpack DEB DIR
unpack() { mkdir -p "$2" && dpkg-deb -x "$1" "$2"; }

# --- the pieces -------------------------------------------------------------

fetch_and_unpack() {
    local pkg deb
    mkdir -p "$CACHE"
    KPKG=$(kernel_package)
    load_candidates "$KPKG" "${GUEST_PKGS[@]}" "${GUEST_LIB_PKGS[@]}" "${HOST_PKGS[@]}"
    for pkg in "$KPKG" "${GUEST_PKGS[@]}" "${GUEST_LIB_PKGS[@]}" "${HOST_PKGS[@]}"; do
        deb=$(fetch "$pkg")
        echo "$pkg $(dpkg-deb -f "$deb" Version)" >> "$WORK/packages"
        case " ${HOST_PKGS[*]} " in
            *" $pkg "*) unpack "$deb" "$WORK/host" ;;
            *) unpack "$deb" "$WORK/pkgs/$pkg" ;;
        esac
    done
    # All the libraries in one tree, for the guest's ld.so (install_binary).
    for pkg in "${GUEST_LIB_PKGS[@]}"; do
        cp -a "$WORK/pkgs/$pkg/." "$WORK/sysroot/"
    done
    KDIR=$WORK/pkgs/$KPKG
    KVER=$(ls "$KDIR/lib/modules")
    [ -f "$KDIR/boot/vmlinuz-$KVER" ] || die "no vmlinuz-$KVER in $KPKG"
    # The package has no modules.dep (it is made when the package is
    # installed); modprobe --show-depends needs one.
    depmod -b "$KDIR" "$KVER"
}

# module_files NAME...: the module files (relative to lib/modules/KVER)
# NAME... need, dependencies first; built-in ones are skipped.
module_files() {
    local m
    for m in "$@"; do
        modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" ||
            die "kernel $KVER has no module $m"
    done | awk -v base="$KDIR/lib/modules/$KVER/" '
        $1 == "insmod" && index($2, base) == 1 {
            f = substr($2, length(base) + 1)
            if (!seen[f]++) print f
        }'
}

# install_modules DIR NAME...: copy the modules and their dependencies to
# DIR/lib/modules/KVER and write the modules.dep that busybox modprobe reads.
install_modules() {
    local dir=$1 f
    shift
    mkdir -p "$dir/lib/modules/$KVER"
    cp "$KDIR/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$dir/lib/modules/$KVER/"
    module_files "$@" | while read -r f; do
        mkdir -p "$dir/lib/modules/$KVER/$(dirname "$f")"
        case $f in
            # busybox modprobe reads plain .ko files only.
            *.xz) xz -dc "$KDIR/lib/modules/$KVER/$f" > "$dir/lib/modules/$KVER/${f%.xz}" ;;
            *) cp "$KDIR/lib/modules/$KVER/$f" "$dir/lib/modules/$KVER/$f" ;;
        esac
    done
    depmod -b "$dir" "$KVER"
}

# install_busybox DIR: busybox and a symlink for each of its applets.
install_busybox() {
    local dir=$1 bb=$WORK/pkgs/busybox-static/bin/busybox applet
    install -D -m 755 "$bb" "$dir/bin/busybox"
    mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin}
    "$bb" --list-full | while read -r applet; do
        case $applet in linuxrc|bin/busybox) continue ;; esac
        [ -e "$dir/$applet" ] || [ -L "$dir/$applet" ] && continue
        ln -s /bin/busybox "$dir/$applet"
    done
}

# The initramfs: busybox, /init and the boot modules, as a gzip'd cpio.
make_initramfs() {
    local dir=$WORK/initramfs
    mkdir -p "$dir"/{bin,dev,proc,sys,etc,newroot}
    install -m 755 "$WORK/pkgs/busybox-static/bin/busybox" "$dir/bin/busybox"
    "$dir/bin/busybox" --list | grep -vx busybox | while read -r applet; do
        ln -s busybox "$dir/bin/$applet"
    done
    ln -s bin "$dir/sbin"
    install -m 755 "$HERE/initramfs/init" "$dir/init"
    install_modules "$dir" "${BOOT_MODULES[@]}"
    printf '%s\n' "# loaded by /init" "${BOOT_MODULES[@]}" > "$dir/etc/modules"
    find "$dir" -exec touch -h -d "@$EPOCH" {} +
    # GNU cpio's --reproducible numbers the inodes itself (busybox cpio
    # records the build directory's), so the same files give the same archive.
    (cd "$dir" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort |
        cpio --quiet -o -H newc -R 0:0 --reproducible) |
        gzip -9 -n > "$WORK/initrd.img"
}

# sysroot_file PATH: PATH (absolute, as the guest sees it) in the unpacked
# libraries, symlinks followed inside the sysroot (libc6's
# /lib64/ld-linux-x86-64.so.2 is an absolute link that must not lead to
# the host's file).
sysroot_file() {
    local p=$WORK/sysroot$1 t n=0
    while [ -L "$p" ] && [ $n -lt 20 ]; do
        t=$(readlink "$p")
        case $t in
            /*) p=$WORK/sysroot$t ;;
            *) p=$(dirname "$p")/$t ;;
        esac
        n=$((n + 1))
    done
    echo "$p"
}

# install_binary ROOT PKGDIR FILE...: copy dynamically linked programs
# (FILE relative to PKGDIR) and every library they need.  The guest's own
# ld.so lists the libraries; one found outside the unpacked packages means
# a package is missing from GUEST_LIB_PKGS, which is an error rather than
# a silent copy from the host.
install_binary() {
    local root=$1 pkgdir=$2 f lib rel
    shift 2
    local ldso libpath
    ldso=$(sysroot_file /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2)
    libpath=$WORK/sysroot/lib/x86_64-linux-gnu:$WORK/sysroot/usr/lib/x86_64-linux-gnu
    [ -f "$ldso" ] || die "libc6 has no ld-linux-x86-64.so.2"
    for f in "$@"; do
        install -D -m 755 "$pkgdir/$f" "$root/$f"
        "$ldso" --library-path "$libpath" --list "$pkgdir/$f" |
            awk '$2 == "=>" && $3 ~ /^\// { print $3 } $2 == "=>" && $3 == "not" { print "missing:" $1 }'
    done | sort -u | while read -r lib; do
        case $lib in
            "$WORK/sysroot/"*) rel=/${lib#"$WORK/sysroot/"} ;;
            *) die "${lib#missing:} is needed by the guest's programs but no package in GUEST_LIB_PKGS has it" ;;
        esac
        # Copy under the name the program asks for (the soname link).
        install -D -m 755 "$(sysroot_file "$rel")" "$root$rel"
    done
    mkdir -p "$root/lib64"
    ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
}

make_rootfs() {
    local root=$WORK/rootfs
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,etc,dev,proc,sys,run,tmp,mnt,root/.ssh,boot/grub,var/log,var/lib,media}
    ln -s ../run "$root/var/run"
    install_busybox "$root"
    install_binary "$root" "$WORK/pkgs/dropbear-bin" \
        usr/sbin/dropbear usr/bin/dropbearkey usr/bin/dbclient
    ln -s dbclient "$root/usr/bin/ssh"
    install_modules "$root" "${BOOT_MODULES[@]}" "${EXTRA_MODULES[@]}"
    printf '%s\n' "# loaded by the initramfs (and again by rcS)" "${BOOT_MODULES[@]}" > "$root/etc/modules"
    # Our files (init scripts, udhcpc script, sudo, ...) over busybox's links.
    (cd "$HERE/rootfs" && find . -type f) | while read -r f; do
        rm -f "$root/$f"
        install -D -m "$( [ -x "$HERE/rootfs/$f" ] && echo 755 || echo 644)" "$HERE/rootfs/$f" "$root/$f"
    done
    chmod 600 "$root/etc/shadow"
    chmod 700 "$root/root" "$root/root/.ssh"
    chmod 1777 "$root/tmp"
    {
        echo "Ferrostack test guest, built from these Debian packages:"
        cat "$WORK/packages"
    } > "$root/etc/ferrostack-guest-release"
    cat > "$root/etc/os-release" <<EOF
NAME="Ferrostack test guest"
ID=ferrostack-guest
PRETTY_NAME="Ferrostack test guest (Debian packages, busybox + dropbear, kernel $KVER)"
EOF
    install -m 644 "$KDIR/boot/vmlinuz-$KVER" "$root/boot/vmlinuz"
    install -m 644 "$WORK/initrd.img" "$root/boot/initrd.img"
    write_grub_cfg > "$root/boot/grub/grub.cfg"
    find "$root" -exec touch -h -d "@$EPOCH" {} +
}

# grub.cfg: boot at once, on both the serial console and the screen.
# linux16/initrd16 enter the kernel through its 16-bit setup code, as
# QEMU's -kernel does; with GRUB's 32-bit "linux" entry the kernel takes
# 5-8 s longer under TCG to get from GRUB to its first instruction.
# cryptomgr.notests skips the kernel's crypto self-tests, its slowest
# initcall under TCG (0.5 s).
write_grub_cfg() {
    cat <<EOF
# Ferrostack test guest.  Kernel messages and the guest's banner go to the
# serial console (the last console= is /dev/console); tty0 is the screen.
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
menuentry "Ferrostack test guest ($KVER)" {
    linux16 /boot/vmlinuz root=/dev/vda1 rw console=tty0 console=ttyS0,115200 quiet cryptomgr.notests no_timer_check${FERROSTACK_GUEST_APPEND:+ $FERROSTACK_GUEST_APPEND}
    initrd16 /boot/initrd.img
}
EOF
}

# The root partition image, owned by root whoever built it: mkfs.ext4 -d
# copies the builder's uid/gid, so debugfs sets them to 0 afterwards (and
# the inode change times, which are the build's, to the fixed time).
# 4 KiB blocks: mke2fs would pick 1 KiB ones for a small filesystem.
make_partition() {
    local part=$WORK/root.img part_mb=$((SIZE_MB - 1))
    rm -f "$part"
    E2FSPROGS_FAKE_TIME=$EPOCH mkfs.ext4 -q -F -b 4096 -I 256 -L "$ROOT_LABEL" -U "$FS_UUID" \
        -E "root_owner=0:0,hash_seed=$FS_HASH_SEED" -d "$WORK/rootfs" "$part" "${part_mb}M" >/dev/null
    (cd "$WORK/rootfs" && find .) | sed 's|^\.||; s|^$|/|' |
        awk -v t="@$EPOCH" '{ printf "sif %s uid 0\nsif %s gid 0\nsif %s ctime %s\n", $0, $0, $0, t }' \
        > "$WORK/chown.debugfs"
    E2FSPROGS_FAKE_TIME=$EPOCH debugfs -w -f "$WORK/chown.debugfs" "$part" >/dev/null 2>"$WORK/debugfs.err" ||
        die "debugfs failed: $(cat "$WORK/debugfs.err")"
}

# grub-mkimage from the unpacked grub-common, with the unpacked
# libdevmapper if the host has none.
grub_mkimage() {
    LD_LIBRARY_PATH=$WORK/host/lib/x86_64-linux-gnu:$WORK/host/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
        "$WORK/host/usr/bin/grub-mkimage" "$@"
}

# core.img with everything it needs built in (no /boot/grub/i386-pc on the
# disk): BIOS disks, the MBR partition table, ext4, the normal mode that
# reads grub.cfg, and the commands grub.cfg uses.
make_core_img() {
    local mods=$WORK/host/usr/lib/grub/i386-pc
    [ -f "$mods/boot.img" ] || die "grub-pc-bin has no i386-pc/boot.img"
    if LD_LIBRARY_PATH=$WORK/host/lib/x86_64-linux-gnu ldd "$WORK/host/usr/bin/grub-mkimage" | grep -q 'not found'; then
        die "grub-mkimage needs libraries this host lacks: $(LD_LIBRARY_PATH=$WORK/host/lib/x86_64-linux-gnu ldd "$WORK/host/usr/bin/grub-mkimage" | grep 'not found' | tr -s ' \t' ' ')"
    fi
    grub_mkimage -O i386-pc -d "$mods" -o "$WORK/core.img" -p '(hd0,msdos1)/boot/grub' \
        biosdisk part_msdos ext2 normal linux16 serial terminal echo test configfile
}

# disk.raw: MBR (GRUB's boot.img code + the partition table), core.img in
# the gap before the partition (sectors 1..2047, where boot.img and
# core.img's first sector expect it), then the root partition from 1 MiB.
assemble_disk() {
    local disk=$WORK/disk.raw core_sectors
    core_sectors=$(( ($(stat -c %s "$WORK/core.img") + 511) / 512 ))
    [ "$core_sectors" -lt 2047 ] || die "core.img ($core_sectors sectors) does not fit before the partition"
    rm -f "$disk"
    truncate -s "${SIZE_MB}M" "$disk"
    printf 'label: dos\nlabel-id: %s\nunit: sectors\nstart=2048, type=83, bootable\n' "$DISK_ID" |
        sfdisk -q --no-reread --no-tell-kernel "$disk" >/dev/null
    dd if="$WORK/host/usr/lib/grub/i386-pc/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
    dd if="$WORK/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none
    dd if="$WORK/root.img" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
}

main() {
    [ $# -eq 1 ] || usage
    case $1 in -h|--help) usage ;; esac
    local out=$1
    if [ "$SIZE_MB" -lt 64 ] || [ "$SIZE_MB" -gt 1024 ]; then
        die "FERROSTACK_GUEST_SIZE_MB must be 64..1024 (the m1.tiny flavor has a 1 GiB disk)"
    fi
    PATH=$PATH:/usr/sbin:/sbin          # mkfs.ext4, sfdisk, depmod for non-root users
    ensure_host_tools

    WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferrostack-guest.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    mkdir -p "$WORK/sysroot"

    fetch_and_unpack
    log "kernel $KVER"
    make_initramfs
    make_rootfs
    make_partition
    make_core_img
    assemble_disk
    mkdir -p "$(dirname "$out")"
    qemu-img convert -q -c -f raw -O qcow2 "$WORK/disk.raw" "$out.tmp"
    mv "$out.tmp" "$out"

    local virt bytes
    virt=$(qemu-img info --output=json "$out" | awk -F': *' '/"virtual-size"/ { gsub(/,/, "", $2); print $2; exit }')
    bytes=$(stat -c %s "$out")
    echo "built $out"
    echo "  file size:    $bytes bytes ($(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MiB)"
    echo "  virtual size: $virt bytes ($((virt / 1048576)) MiB)"
    echo "  kernel:       $KVER"
}

main "$@"
