#include "device_table.hh"

#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"

namespace ioguard {

void DeviceTable::set_base(uint64_t base)
{
    base_.store(base, std::memory_order_release);
    cache_.clear();
}

DteLocation DeviceTable::locate(uint16_t devid) const
{
    const uint64_t base = base_.load(std::memory_order_acquire);
    const uint64_t table_bytes =
        ((base & IOGUARD_DEV_TABLE_SIZE_MASK) + 1) * 4096;
    DteLocation where;
    where.beyond_table = uint64_t{devid} * DTE_ENTRY_SIZE >= table_bytes;
    where.address = (base & IOGUARD_BASE_ADDR_MASK) +
                    uint64_t{devid} * DTE_ENTRY_SIZE;
    return where;
}

std::optional<DeviceTableEntry> DeviceTable::load(uint16_t devid,
                                                  DteLocation &where) const
{
    where = locate(devid);
    if (where.beyond_table) {
        return std::nullopt;
    }
    uint8_t buf[DTE_ENTRY_SIZE];
    if (!host_.read_ram(where.address, buf, sizeof(buf))) {
        return std::nullopt;
    }
    RawDte raw;
    for (int i = 0; i < 4; i++) {
        raw[i] = load_le64(buf + 8 * i);
    }
    return DeviceTableEntry{raw};
}

std::optional<DeviceTableEntry> DeviceTable::load_and_cache(uint16_t devid,
                                                            DteLocation &where)
{
    const uint64_t filled_at = cache_.epoch();
    auto dte = load(devid, where);
    if (dte) {
        cache_.insert(devid, *dte, filled_at);
    }
    return dte;
}

} // namespace ioguard
