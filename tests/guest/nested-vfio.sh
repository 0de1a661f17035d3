#!/bin/busybox sh
# shellcheck shell=dash
# shellcheck disable=SC3028  # busybox's sh has RANDOM (and seeds it)
# Run by init (ioguard.run=nested-vfio.sh) from the extra initramfs that
# tests/guest/test_nested_vfio.py appends: ioguard-nic (1234:10a1) is bound
# to vfio-pci and assigned to an inner QEMU (the project's own binary) with
# -device ioguard-iommu,dma-remap=on. The inner QEMU runs the qtest
# accelerator: this script is its guest, speaking the qtest protocol, so no
# second level of CPU emulation is needed. It programs the inner IOMMU's
# device table, page tables and command buffer, has the NIC's DMA test
# engine copy between IOVAs, and prints what it sees:
#   IOGUARD-NESTED-REFUSED exit=STATUS message=...   (without dma-remap=on)
#   IOGUARD-NESTED step=NAME te=STATUS err=ADDRESS data=HEX
#   IOGUARD-NESTED-TRACE step=NAME ioguard_notify_(un)map ...
# The host test checks them against the tables and the outer IOMMU's faults.
bdf=$(ioguard-vfio-bind 0x1234 0x10a1 2>/tmp/vfio-bind.err | head -1)
if [ -s /tmp/vfio-bind.err ]; then
  echo "IOGUARD-NESTED-ERROR $(cat /tmp/vfio-bind.err)"
fi
[ -n "$bdf" ] || { echo "IOGUARD-NESTED-ERROR no ioguard-nic"; exit 1; }

inner="qemu-system-x86_64 -L /fw -M q35 -m 64M -nodefaults -display none
  -accel qtest"

# Without dma-remap=on the inner machine must not start (nor run forever).
# shellcheck disable=SC2086  # $inner is words
timeout 60 $inner -qtest null -device ioguard-iommu -device "vfio-pci,host=$bdf,addr=0x2" \
  > /tmp/refused.log 2>&1 < /dev/null
status=$?
echo "IOGUARD-NESTED-REFUSED exit=$status message=$(grep ioguard /tmp/refused.log | head -1)"
# Nor may one be hot-plugged into it (through a monitor on two pipes).
mkfifo /tmp/mon.in /tmp/mon.out
# shellcheck disable=SC2086
$inner -qtest null -device ioguard-iommu \
  -device pcie-root-port,id=rp1,chassis=1 \
  -chardev pipe,id=mon,path=/tmp/mon -mon chardev=mon,mode=readline \
  > /tmp/hotplug.log 2>&1 < /dev/null &
hot_pid=$!
exec 5> /tmp/mon.in 6< /tmp/mon.out
echo "device_add vfio-pci,host=$bdf,bus=rp1,id=hot" >&5
echo "info pci" >&5
reply=""
# shellcheck disable=SC3045  # busybox's sh has read -t
while read -t 60 -r line <&6; do
  case "$line" in
    *ioguard-iommu*) reply=$line;;
    *"Bus  1, device"*|*"PCI bridge"*) break;;
  esac
done
echo "IOGUARD-NESTED-HOTPLUG message=$reply"
kill -0 $hot_pid && echo "IOGUARD-NESTED-HOTPLUG-ALIVE"
kill $hot_pid
wait $hot_pid
exec 5>&- 6<&-

mkfifo /tmp/qtest-in /tmp/qtest-out
# shellcheck disable=SC2086
$inner -qtest stdio -device ioguard-iommu,dma-remap=on,guest-translation=on \
  -device "vfio-pci,host=$bdf,addr=0x2" \
  -trace ioguard_notify_map -trace ioguard_notify_unmap -D /tmp/inner-trace.log \
  -qtest-log none \
  < /tmp/qtest-in > /tmp/qtest-out 2> /tmp/inner.log &
inner_pid=$!
exec 3> /tmp/qtest-in 4< /tmp/qtest-out

reply=""
q() {
  echo "$*" >&3
  read -r reply <&4 || { echo "IOGUARD-NESTED-ERROR the inner QEMU went: $*"; cat /tmp/inner.log; exit 1; }
  case "$reply" in OK*) ;; *) echo "IOGUARD-NESTED-ERROR $*: $reply";; esac
}
value() { q "$@"; echo "${reply#OK }"; }

# The inner machine's layout (64 MiB of RAM).
MMIO=0xfed80000     # ioguard-iommu's registers
BAR=0xfe000000      # ioguard-nic's registers, through vfio-pci
DEVTAB=0x100000     # 128 entries; the NIC is requester 00:02.0 (0x10)
L3=0x200000; L2=0x201000; L1=0x202000
CMDBUF=0x210000
SRC=0x300000; DST1=0x310000; DST2=0x320000
IR=$((1 << 61)); IW=$((1 << 62))

# BAR 0 and memory + bus-master decoding, through the config mechanism.
q outl 0xcf8 0x80001010; q outl 0xcfc $BAR
q outl 0xcf8 0x80001004; q outw 0xcfc 0x6

trace_lines=0
copy() {    # copy STEP SRC DST CHECKED-ADDRESS
  q memset "$4" 4096 0
  q writel $((BAR + 0x80)) "$2"; q writel $((BAR + 0x84)) "$3"
  q writel $((BAR + 0x88)) 4096; q writel $((BAR + 0x90)) 3
  i=0
  while :; do
    te=$(value readl $((BAR + 0x94)))
    [ $((te & 2)) -ne 0 ] && break
    i=$((i + 1)); [ $i -gt 500 ] && break
    sleep 0.02
  done
  err=$(value readl $((BAR + 0xa0)))
  data=$(value read "$4" 16)
  echo "IOGUARD-NESTED step=$1 te=$te err=$err data=$data"
  # What the inner IOMMU told vfio since the previous step.
  total=$(wc -l < /tmp/inner-trace.log)
  sed -n "$((trace_lines + 1)),${total}p" /tmp/inner-trace.log |
    sed -n "s/^.*\(ioguard_notify_[a-z]*\)/IOGUARD-NESTED-TRACE step=$1 \1/p"
  trace_lines=$total
}
pte() {     # pte ADDRESS VALUE
  q writeq "$1" "$(printf '0x%x' "$2")"
}
cmd_tail=0
command() {     # command DWORD0 DWORD1 QWORD1: one command, run at once
  q writel $((CMDBUF + cmd_tail)) "$1"
  q writel $((CMDBUF + cmd_tail + 4)) "$2"
  q writeq $((CMDBUF + cmd_tail + 8)) "$3"
  cmd_tail=$(((cmd_tail + 16) % 4096))
  q writeq $((MMIO + 0x2008)) $cmd_tail
}
invalidate_page() {     # INVALIDATE_IOMMU_PAGES of one page of domain 1
  command 0 $((3 << 28 | 1)) "$1"
}
invalidate_all() {      # INVALIDATE_IOMMU_ALL
  command 0 $((8 << 28)) 0
}
invalidate_dte() {      # INVALIDATE_DEVTAB_ENTRY of the NIC (00:02.0)
  command 0x10 $((2 << 28)) 0
}
dte() {                 # dte ROOT: translating, domain 1
  q writeq $((DEVTAB + 0x10 * 32)) "$(printf '0x%x' $((1 | 2 | 3 << 9 | $1 | IR | IW)))"
  q writel $((DEVTAB + 0x10 * 32 + 8)) 1
}

# 1. The IOMMU is off: the NIC's DMA is identity, vfio maps all of RAM.
q memset $SRC 4096 0xa5
copy identity $SRC $DST2 $DST2

# 2. Translation: IOVA 0x1000000 -> SRC (read), 0x1001000 -> DST1.
pte $L3 $((L2 | 2 << 9 | 1 | IR | IW))
pte $((L2 + 8 * 8)) $((L1 | 1 << 9 | 1 | IR | IW))
pte $L1 $((SRC | 1 | IR))
pte $((L1 + 8)) $((DST1 | 1 | IR | IW))
dte $L3
q writeq $((MMIO + 0x00)) $DEVTAB
q writeq $((MMIO + 0x08)) "$(printf '0x%x' $((CMDBUF | 8 << 56)))"
q writeq $((MMIO + 0x18)) $((1 | 1 << 12))                   # IommuEn, CmdBufEn
copy translated 0x1000000 0x1001000 $DST1

# 3. An IOVA the tables do not map: the host's IOMMU refuses it.
copy unmapped 0x1000000 0x1002000 $DST2

# 4. Mapped, then invalidated (NpCache): vfio is told, the copy lands.
pte $((L1 + 16)) $((DST2 | 1 | IR | IW))
invalidate_page 0x1002000
copy mapped 0x1000000 0x1002000 $DST2

# 5. Unmapped and invalidated: vfio unmaps it.
pte $((L1 + 8)) 0
invalidate_page 0x1001000
copy unmapped-again 0x1000000 0x1001000 $DST1

# 6. Translation off and on again: the replay is the tables, exactly.
q writeq $((MMIO + 0x18)) $((1 << 12))
q writeq $((MMIO + 0x18)) $((1 | 1 << 12))
copy replayed 0x1000000 0x1002000 $DST2
copy replayed-unmapped 0x1000000 0x1001000 $DST1

# 7. A 2 MiB page (IOVA 0x1200000 -> 0x400000), after INVALIDATE_IOMMU_ALL.
pte $((L2 + 9 * 8)) $((0x400000 | 1 | IR | IW))
invalidate_all
copy large-page 0x1000000 0x1280000 0x480000

# 8. The 2 MiB page replaced by a table with one 4 KiB page in it, and
# only that page invalidated: the large page goes whole.
L1B=0x203000
pte $((L1B + 0x80 * 8)) $((0x330000 | 1 | IR | IW))
pte $((L2 + 9 * 8)) $((L1B | 1 << 9 | 1 | IR | IW))
invalidate_page 0x1280000
copy split 0x1000000 0x1280000 0x330000

# 9. A 2 MiB page over the interrupt window (0xfee00000..0xfeefffff):
# vfio hears of the part above it only.
L2B=0x204000
pte $((L2B + 0x1f7 * 8)) $((0x600000 | 1 | IR | IW))
pte $((L3 + 3 * 8)) $((L2B | 2 << 9 | 1 | IR | IW))
invalidate_all
copy msi-window 0x1000000 0xfef00000 0x700000

# 10. A new DTE (empty tables): everything goes; the old one back: it all
# comes back.
dte 0x205000
invalidate_dte
copy dte-change 0x1000000 0x1002000 $DST2
dte $L3
invalidate_dte
copy dte-back 0x1000000 0x1002000 $DST2

# 12. Guest (v2) tables, as Linux's amd_iommu=pgtbl_v2 sets them up: a
# GCR3 table whose PASID 0 entry holds x86-64 tables, the DTE with GV and
# GIoV (host Mode 0), GTEn. IOVA 0x1000000 -> SRC (read), 0x1001000 -> DST1.
GCR3=0x206000; V4=0x207000; V3=0x208000; V2=0x209000; V1=0x20a000
V2RW=$((1 | 2 | 4))     # present, R/W, U/S
GN=4                    # INVALIDATE_IOMMU_PAGES: the PASID's pages
pte $GCR3 $((V4 | 1))
pte $V4 $((V3 | V2RW)); pte $V3 $((V2 | V2RW)); pte $((V2 + 8 * 8)) $((V1 | V2RW))
pte $V1 $((SRC | 1 | 4))
pte $((V1 + 8)) $((DST1 | V2RW))
q writeq $((MMIO + 0x18)) $((1 | 1 << 12 | 1 << 16))          # + GTEn
pte $((DEVTAB + 0x10 * 32)) $((1 | 2 | IR | IW | 1 << 55 | 1 << 54 | ((GCR3 >> 12) & 7) << 58))
q writel $((DEVTAB + 0x10 * 32 + 8)) $((1 | ((GCR3 >> 15) & 0xffff) << 16))
invalidate_dte
copy guest-tables 0x1000000 0x1001000 $DST1

# 13. A v2 page mapped, then invalidated with GN=1 (PASID 0): vfio is told.
pte $((V1 + 16)) $((DST2 | V2RW))
command 0 $((3 << 28 | 1)) $((0x1002000 | GN))
copy guest-mapped 0x1000000 0x1002000 $DST2

# 14. Unmapped, invalidated with GN=1: vfio unmaps it.
pte $((V1 + 8)) 0
command 0 $((3 << 28 | 1)) $((0x1001000 | GN))
copy guest-unmapped 0x1000000 0x1001000 $DST1

# Back to the v1 tables, GTEn off.
q writeq $((MMIO + 0x18)) $((1 | 1 << 12))
dte $L3
invalidate_dte

# 11. A hostile guest, with vfio listening: random table entries (some
# pointing at MMIO, past RAM, at other tables or themselves), DTEs,
# invalidations, commands and control writes. Then sane tables again: the
# NIC's DMA must work as they say.
seed=$(sed -n 's/.*ioguard.seed=\([0-9]*\).*/\1/p' /proc/cmdline)
seed=${seed:-$$}
RANDOM=$seed
# (RANDOM only in this shell: a subshell's is not the seed's.)
r64() {
  v=$(((RANDOM << 49) ^ (RANDOM << 34) ^ (RANDOM << 19) ^ (RANDOM << 4) ^ (RANDOM & 15)))
  R64=$(printf '0x%x' "$v")
}
pick_table() {
  case $((RANDOM % 5)) in
    0) T=$L3;; 1) T=$L2;; 2) T=$L1;; 3) T=$L1B;; *) T=$L2B;;
  esac
}
start=$(date +%s)
before=$(wc -l < /tmp/inner-trace.log)
i=0
while [ $i -lt 1500 ]; do
  pick_table
  r64
  case $((RANDOM % 9)) in
    0) q writeq $((T + 8 * (RANDOM % 512))) "$R64";;
    1) pte $((L1 + 8 * (RANDOM % 512))) $(((RANDOM % 0x5000) << 12 | 1 | IR | IW));;
    2) slot=$((T + 8 * (RANDOM % 512))); pick_table
       pte $slot $((T | (RANDOM % 8) << 9 | 1 | IR | IW));;
    3) pte $((DEVTAB + 0x10 * 32)) $((RANDOM % 4 | (RANDOM % 8) << 9 | T | (RANDOM % 4) << 61));;
    4) command 0 $((3 << 28 | RANDOM % 4)) $(((RANDOM << 12) | RANDOM % 4));;
    5) invalidate_all;;
    6) invalidate_dte;;
    7) command $((RANDOM << 17 ^ RANDOM)) $(((RANDOM % 16) << 28 | RANDOM)) "$R64";;
    *) q writeq $((MMIO + 0x18)) $((RANDOM % 2 | 1 << 12));;
  esac
  i=$((i + 1))
done
told=$(sed -n "$((before + 1)),\$p" /tmp/inner-trace.log)
echo "IOGUARD-NESTED-HOSTILE seed=$seed ops=$i seconds=$(($(date +%s) - start))" \
  "maps=$(echo "$told" | grep -c notify_map)" \
  "unmaps=$(echo "$told" | grep -c notify_unmap)"
# Sane again: the command buffer restarted, clean tables, SRC and DST2.
q writeq $((MMIO + 0x18)) 1
q writeq $((MMIO + 0x2000)) 0; q writeq $((MMIO + 0x2008)) 0; cmd_tail=0
q memset $L3 $((0x6000)) 0
pte $L3 $((L2 | 2 << 9 | 1 | IR | IW))
pte $((L2 + 8 * 8)) $((L1 | 1 << 9 | 1 | IR | IW))
pte $L1 $((SRC | 1 | IR))
pte $((L1 + 16)) $((DST2 | 1 | IR | IW))
dte $L3
q writeq $((MMIO + 0x18)) $((1 | 1 << 12))
invalidate_dte
invalidate_all
trace_lines=$(wc -l < /tmp/inner-trace.log)
copy after-hostile 0x1000000 0x1002000 $DST2

# Still running, whatever it was asked: then stopped.
kill -0 $inner_pid && echo "IOGUARD-NESTED-ALIVE"
kill $inner_pid
wait $inner_pid
# Whatever the inner QEMU said (nothing, if all went well).
sed 's/^/IOGUARD-NESTED-INNER /' /tmp/inner.log
