#!/usr/bin/env bash
# Boots N small Linux guests (Debian kernel + busybox initramfs) under QEMU TCG, waits until each is
# up, and dumps each guest's RAM twice: `pmemsave` (raw, format `raw`) and `dump-guest-memory`
# (ELF core, format `elf`). See README.md beside this file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
guests=4
mem_mib=128
out="./captured"
boot_timeout=300
install=1
kernel=""
seed_base=1
shared_kib=4096
unique_kib=2048
heap_kib=2048

usage() {
  cat <<EOF
usage: $0 [options]
  -n, --guests N        guests to boot in parallel (default $guests)
  -m, --memory MIB      RAM per guest in MiB (default $mem_mib)
  -o, --out DIR         output directory (default $out; a .gitignore of '*' is written into it)
  -t, --timeout SEC     boot timeout per guest, seconds (default $boot_timeout)
  -k, --kernel FILE     kernel image (default: newest /boot/vmlinuz-*)
      --seed-base N     guest i (1..N) gets pvseed=seed-base+i-1 (default $seed_base)
      --shared-kib K    tmpfs file data identical in every guest, KiB (default $shared_kib, plus half again)
      --unique-kib K    tmpfs file data unique to each guest, KiB (default $unique_kib)
      --heap-kib K      anonymous heap unique to each guest, KiB (default $heap_kib)
      --no-install      never run apt-get; fail if a tool is missing
  -h, --help
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    -n | --guests) guests="$2"; shift 2 ;;
    -m | --memory) mem_mib="$2"; shift 2 ;;
    -o | --out) out="$2"; shift 2 ;;
    -t | --timeout) boot_timeout="$2"; shift 2 ;;
    -k | --kernel) kernel="$2"; shift 2 ;;
    --seed-base) seed_base="$2"; shift 2 ;;
    --shared-kib) shared_kib="$2"; shift 2 ;;
    --unique-kib) unique_kib="$2"; shift 2 ;;
    --heap-kib) heap_kib="$2"; shift 2 ;;
    --no-install) install=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "capture: unknown option $1" >&2; usage >&2; exit 64 ;;
  esac
done
for v in guests mem_mib boot_timeout seed_base shared_kib unique_kib heap_kib; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "capture: $v must be a non-negative integer, got '${!v}'" >&2; exit 64; }
done
((guests >= 1)) || { echo "capture: need at least one guest" >&2; exit 64; }
((mem_mib >= 64)) || { echo "capture: a Debian kernel needs at least 64 MiB, got $mem_mib" >&2; exit 64; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[capture %6ss] %s\n' "$(since "$t_start")" "$*"; }
t_start="$(now)"

# --- 1. tools -------------------------------------------------------------------------------------
# A static busybox is needed: the initramfs has no libc. Debian's busybox-static installs one as
# /bin/busybox; the dynamic `busybox` package would not boot.
static_busybox() {
  local b
  for b in /bin/busybox /usr/bin/busybox; do
    if [[ -x "$b" ]] && ! ldd "$b" >/dev/null 2>&1; then echo "$b"; return 0; fi
  done
  return 1
}
# shellcheck disable=SC2012 # /boot/vmlinuz-* names are plain; ls -v sorts versions.
newest_kernel() { ls -1v /boot/vmlinuz-* 2>/dev/null | tail -n 1; }

missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
static_busybox >/dev/null || missing+=(busybox-static)
command -v cpio >/dev/null || missing+=(cpio)
command -v gzip >/dev/null || missing+=(gzip)
[[ -n "$kernel" || -n "$(newest_kernel)" ]] || missing+=(linux-image-amd64)
t_install="$(now)"
if ((${#missing[@]})); then
  ((install)) || { echo "capture: missing ${missing[*]} and --no-install given" >&2; exit 69; }
  ((EUID == 0)) || { echo "capture: missing ${missing[*]}; run as root or install them" >&2; exit 69; }
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq
  timeout 1200 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
install_s="$(since "$t_install")"
busybox="$(static_busybox)"
kernel="${kernel:-$(newest_kernel)}"
[[ -r "$kernel" ]] || { echo "capture: kernel $kernel not readable" >&2; exit 66; }
log "tools ready in ${install_s}s: $(qemu-system-x86_64 --version | head -n 1), kernel $kernel, busybox $busybox"

# --- 2. initramfs ---------------------------------------------------------------------------------
mkdir -p "$out"
out="$(cd "$out" && pwd)"
# The images are large and machine-specific: keep them out of any git repository the dir is in.
printf '*\n' > "$out/.gitignore"
work="$out/work"
rm -rf "$work"
mkdir -p "$work/root/bin" "$work/root/dev"
cp "$busybox" "$work/root/bin/busybox"
cp "$here/guest-init.sh" "$work/root/init"
chmod 755 "$work/root/init" "$work/root/bin/busybox"
(cd "$work/root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -6 > "$work/initramfs.cpio.gz"
log "initramfs $(du -k "$work/initramfs.cpio.gz" | cut -f1) KiB"

# --- 3. boot --------------------------------------------------------------------------------------
pids=()
readers=()
cleanup() {
  local p
  for p in "${pids[@]}" "${readers[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# QEMU's `pipe:` chardev opens PATH.in and PATH.out read-write, so plain FIFOs drive the monitor
# without socat or netcat.
boot_guest() {
  local i="$1" seed="$2" g="$work/guest$1"
  rm -f "$g.mon.in" "$g.mon.out"
  mkfifo "$g.mon.in" "$g.mon.out"
  qemu-system-x86_64 -accel tcg -machine pc -cpu qemu64 -smp 1 -m "${mem_mib}M" \
    -nographic -vga none -nic none -no-reboot \
    -kernel "$kernel" -initrd "$work/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 pvseed=$seed pvshared=$shared_kib pvunique=$unique_kib pvheap=$heap_kib" \
    -serial "file:$out/guest$i.serial.log" -monitor "pipe:$g.mon" \
    </dev/null >"$g.qemu.log" 2>&1 &
  pids[i]=$!
  cat <"$g.mon.out" >"$out/guest$i.monitor.log" &
  readers[i]=$!
}

prompts() { grep -o '(qemu)' "$out/guest$1.monitor.log" 2>/dev/null | wc -l; }
# Sends one monitor command and waits for the next prompt: pmemsave and (without -d)
# dump-guest-memory return only when the file is written.
monitor() {
  local i="$1" cmd="$2" limit="$3" before deadline
  before="$(prompts "$i")"
  # 1<> opens the FIFO read-write, which never blocks even if QEMU has gone.
  printf '%s\n' "$cmd" 1<>"$work/guest$i.mon.in"
  deadline=$((SECONDS + limit))
  until (($(prompts "$i") > before)); do
    ((SECONDS < deadline)) || { echo "capture: guest$i: '$cmd' did not finish in ${limit}s" >&2; return 1; }
    kill -0 "${pids[i]}" 2>/dev/null || { echo "capture: guest$i: QEMU exited during '$cmd'" >&2; return 1; }
    sleep 0.2
  done
}

declare -A t_boot t_ready
for ((i = 1; i <= guests; i++)); do
  rm -f "$out/guest$i".{raw,elf,serial.log,monitor.log}
  t_boot[$i]="$(now)"
  boot_guest "$i" $((seed_base + i - 1))
done
log "booted $guests guest(s) under TCG, ${mem_mib} MiB each; waiting for PAGEVISOR-READY (timeout ${boot_timeout}s)"

pending=$guests
deadline=$((SECONDS + boot_timeout))
while ((pending > 0)); do
  for ((i = 1; i <= guests; i++)); do
    [[ -n "${t_ready[$i]:-}" ]] && continue
    if grep -q PAGEVISOR-READY "$out/guest$i.serial.log" 2>/dev/null; then
      t_ready[$i]="$(since "${t_boot[$i]}")"
      pending=$((pending - 1))
      log "guest$i ready after ${t_ready[$i]}s: $(grep -a -m1 PAGEVISOR-READY "$out/guest$i.serial.log" | tr -d '\r')"
    elif ! kill -0 "${pids[i]}" 2>/dev/null; then
      echo "capture: guest$i's QEMU exited before it was ready; tail of its serial log:" >&2
      tail -n 20 "$out/guest$i.serial.log" "$work/guest$i.qemu.log" >&2 || true
      exit 1
    fi
  done
  if ((pending > 0)); then
    if ((SECONDS >= deadline)); then
      echo "capture: $pending guest(s) not ready after ${boot_timeout}s; see $out/guest*.serial.log" >&2
      exit 1
    fi
    sleep 1
  fi
done
boot_s="$(since "$t_start")"

# --- 4. dump --------------------------------------------------------------------------------------
# Each guest is stopped first so that its raw and ELF dumps hold the same memory.
bytes=$((mem_mib * 1024 * 1024))
dump_guest() {
  local i="$1" t
  monitor "$i" "stop" 30
  t="$(now)"
  monitor "$i" "pmemsave 0 $bytes \"$out/guest$i.raw\"" 600
  echo "raw $(since "$t")" >"$work/guest$i.times"
  t="$(now)"
  monitor "$i" "dump-guest-memory \"$out/guest$i.elf\"" 600
  echo "elf $(since "$t")" >>"$work/guest$i.times"
  # The monitor reports a failed dump only as text: check the files themselves.
  [[ "$(stat -c %s "$out/guest$i.raw" 2>/dev/null)" == "$bytes" ]] || { echo "capture: guest$i.raw is not $bytes bytes" >&2; return 1; }
  [[ -s "$out/guest$i.elf" ]] || { echo "capture: guest$i.elf was not written" >&2; return 1; }
  # QEMU creates the core 0400; importers run as other users must read it too.
  chmod 644 "$out/guest$i.raw" "$out/guest$i.elf"
  printf 'quit\n' 1<>"$work/guest$i.mon.in"
  # QEMU is the parent shell's child, not this subshell's: poll instead of wait.
  t=$((SECONDS + 60))
  while kill -0 "${pids[i]}" 2>/dev/null; do
    ((SECONDS < t)) || { echo "capture: guest$i: QEMU did not quit" >&2; return 1; }
    sleep 0.2
  done
}
t_dump="$(now)"
dumpers=()
for ((i = 1; i <= guests; i++)); do
  dump_guest "$i" &
  dumpers+=($!)
done
failed=0
for p in "${dumpers[@]}"; do wait "$p" || failed=1; done
((failed == 0)) || { echo "capture: a dump failed; see $out/guest*.monitor.log" >&2; exit 1; }
dump_s="$(since "$t_dump")"
wait "${pids[@]}" 2>/dev/null || true
pids=()
rm -f "$work"/guest*.mon.in "$work"/guest*.mon.out

# --- 5. report ------------------------------------------------------------------------------------
{
  printf 'install/check: %ss  boot (all ready): %ss  dump (all, in parallel): %ss  total: %ss\n' \
    "$install_s" "$boot_s" "$dump_s" "$(since "$t_start")"
  printf '%-8s %6s %10s %8s %8s %14s %14s\n' guest seed boot_s raw_s elf_s raw_bytes elf_bytes
  for ((i = 1; i <= guests; i++)); do
    printf '%-8s %6s %10s %8s %8s %14s %14s\n' "guest$i" $((seed_base + i - 1)) "${t_ready[$i]}" \
      "$(awk '$1 == "raw" { print $2 }' "$work/guest$i.times")" "$(awk '$1 == "elf" { print $2 }' "$work/guest$i.times")" \
      "$(stat -c %s "$out/guest$i.raw")" "$(stat -c %s "$out/guest$i.elf")"
  done
} | tee "$out/timings.txt"
{
  printf '{\n  "qemu": "%s",\n  "kernel": "%s",\n  "memoryMiB": %s,\n  "guests": [\n' \
    "$(qemu-system-x86_64 --version | head -n 1)" "$(basename "$kernel")" "$mem_mib"
  for ((i = 1; i <= guests; i++)); do
    printf '    { "name": "guest%s", "seed": %s, "raw": "guest%s.raw", "elf": "guest%s.elf", "bootSeconds": %s }%s\n' \
      "$i" $((seed_base + i - 1)) "$i" "$i" "${t_ready[$i]}" "$([[ $i -lt $guests ]] && echo ,)"
  done
  printf '  ]\n}\n'
} >"$out/manifest.json"
log "images in $out (node $here/stats.mjs $out for page statistics)"
