#!/bin/busybox sh
# shellcheck shell=dash
# ioguard-vfio-bind VENDOR DEVICE: in the guest, from the vfio initramfs
# (scripts/build-guest --dpdk): loads the vfio modules (once), binds every
# PCI function VENDOR:DEVICE (e.g. 0x8086 0x100e) to vfio-pci, and prints
# each one's address (0000:00:06.0), one per line. A module that does not
# load is said on stderr as IOGUARD-VFIO-ERROR.
if [ ! -e /sys/bus/pci/drivers/vfio-pci ]; then
  while read -r m; do
    insmod "/lib/modules-extra/$m" || echo "IOGUARD-VFIO-ERROR insmod $m" >&2
  done < /lib/modules-extra.order
fi
for d in /sys/bus/pci/devices/*; do
  if [ "$(cat "$d/vendor")" != "$1" ] || [ "$(cat "$d/device")" != "$2" ]; then
    continue
  fi
  bdf=$(basename "$d")
  [ -e "$d/driver" ] && echo "$bdf" > "$d/driver/unbind"
  echo vfio-pci > "$d/driver_override"
  echo "$bdf" > /sys/bus/pci/drivers_probe
  echo "$bdf"
done
