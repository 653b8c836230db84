#!/bin/busybox sh
# /init of the capture guests (busybox only). Copied into the initramfs by capture.sh.
# Gives the guest memory that looks like a small real machine: a booted kernel, a few resident
# processes, a tmpfs holding files identical in every guest, and data unique to this guest
# (seeded by `pvseed=N` on the kernel command line, so a re-run writes the same file contents).
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /var/log /srv
/bin/busybox mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o size=64m tmpfs /srv
mount -t tmpfs tmpfs /tmp

seed=0
shared_kib=4096
unique_kib=2048
heap_kib=2048
# shellcheck disable=SC2013 # the command line is one line of words.
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    pvseed=*) seed="${arg#pvseed=}" ;;
    pvshared=*) shared_kib="${arg#pvshared=}" ;;
    pvunique=*) unique_kib="${arg#pvunique=}" ;;
    pvheap=*) heap_kib="${arg#pvheap=}" ;;
  esac
done
hostname "guest$seed"
ifconfig lo 127.0.0.1 up

# Writes $2 KiB of pseudo-random hex text (31 bits per 8 characters) from awk's srand($1): the same seed gives the same
# bytes in every guest, since every guest runs the same static busybox.
gen() {
  awk -v s="$1" -v n="$(($2 * 1024 / 8))" 'BEGIN { srand(s); for (i = 0; i < n; i++) printf "%08x", int(rand() * 2147483648) }'
}

# File content shared by every guest (as a distribution's files would be) and content of its own.
gen 1 "$shared_kib" > /srv/shared-a.dat
gen 2 "$((shared_kib / 2))" > /srv/shared-b.dat
gen "$((1000 + seed))" "$unique_kib" > /srv/unique.dat
# Half-page-sized records and some zero-filled files, like logs and preallocated files.
dd if=/dev/zero of=/srv/zeros.dat bs=4096 count=256 2>/dev/null
seq 1 20000 > /srv/numbers.txt

# Resident processes: a syslog into a ring buffer, a ticker shell loop, a web server on loopback,
# and an awk holding a seeded anonymous heap while it sleeps.
syslogd -C256
klogd
httpd -p 127.0.0.1:8080 -h /srv
( i=0; while true; do i=$((i + 1)); echo "tick $i guest$seed" > /run/tick; logger "tick $i"; sleep 1; done ) &
awk -v s="$((2000 + seed))" -v n="$((heap_kib * 1024 / 64))" 'BEGIN {
  srand(s); for (i = 0; i < n; i++) heap[i] = sprintf("%08x%08x%08x%08x%016d", rand() * 2147483648, rand() * 2147483648, rand() * 2147483648, rand() * 2147483648, i)
  system("sleep 2147483647")
}' &
sleep 2
wget -q -O /tmp/index.check http://127.0.0.1:8080/numbers.txt || echo "pagevisor: httpd check failed"

echo "PAGEVISOR-READY guest$seed $(cut -d' ' -f1 /proc/uptime)s $(grep MemFree /proc/meminfo | tr -s ' ')"
while true; do sleep 3600; done
