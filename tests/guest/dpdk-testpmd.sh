#!/bin/busybox sh
# shellcheck shell=dash
# Run by init (ioguard.run=dpdk-testpmd.sh) from the extra initramfs that
# tests/guest/test_dpdk_vfio.py appends: DPDK's testpmd forwarding between
# the guest's e1000 NICs (8086:100e), bound to vfio-pci, for SECONDS
# (ioguard.dpdktime=SECONDS, default 10). Prints
#   IOGUARD-DPDK ports=N rx=PACKETS tx=PACKETS exit=STATUS
mkdir -p /dev/hugepages /var/run
mount -t hugetlbfs none /dev/hugepages
echo 128 > /proc/sys/vm/nr_hugepages

allow=""
ports=0
for bdf in $(ioguard-vfio-bind 0x8086 0x100e 2>/tmp/vfio-bind.err); do
  allow="$allow -a $bdf"
  ports=$((ports + 1))
done
if [ -s /tmp/vfio-bind.err ]; then
  echo "IOGUARD-DPDK-ERROR $(cat /tmp/vfio-bind.err)"
fi

seconds=$(sed -n 's/.*ioguard.dpdktime=\([0-9]*\).*/\1/p' /proc/cmdline)
pmds=/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0
# testpmd without -i waits for a line on stdin, then stops and prints its
# statistics. --tx-first starts the traffic the hub carries between ports.
# shellcheck disable=SC2086  # one -a per port
(sleep "${seconds:-10}"; echo) |
  LD_LIBRARY_PATH=$pmds dpdk-testpmd -l 0-1 -n 1 -d "$pmds" $allow -- \
    --forward-mode=io --auto-start --tx-first --total-num-mbufs=4096 \
    > /tmp/testpmd.log 2>&1
status=$?
cat /tmp/testpmd.log
stats=$(sed -n '/Accumulated forward statistics/,/^ *+++/p' /tmp/testpmd.log)
rx=$(echo "$stats" | sed -n 's/.*RX-packets: *\([0-9]*\).*/\1/p' | head -1)
tx=$(echo "$stats" | sed -n 's/.*TX-packets: *\([0-9]*\).*/\1/p' | head -1)
echo "IOGUARD-DPDK ports=$ports rx=${rx:-0} tx=${tx:-0} exit=$status"
