// Package resctrltest provides a fake resctrl mount that behaves like the
// kernel's (arch/x86/kernel/cpu/resctrl and fs/resctrl as of Linux 6.x),
// for tests of exact schemata text without RDT hardware.
//
// A Fake is built from an rdt.Hardware (see the variants: IntelL3,
// IntelL3MB, IntelCDP, IntelTwoSocket, AMD) and renders it as info/ files
// and a default group whose schemata lists every domain at its maximum.
// Like the kernel it: parses a whole schemata write before applying any of
// it and applies nothing when a line is bad (EINVAL, with the reason in
// info/last_cmd_status); rejects unknown resources and domain ids, masks
// outside cbm_mask, non-contiguous masks unless sparse_masks is set, masks
// narrower than min_cbm_bits, and MB values outside [min_bandwidth, max];
// rounds MB up to bandwidth_gran; gives new groups the full mask and
// maximum bandwidth; says ENOSPC past num_closids; moves one task per
// tasks write and says ESRCH for a task that does not exist; moves a
// removed group's tasks to the default group; and serves scripted
// llc_occupancy / mbm_total_bytes / mbm_local_bytes under mon_data. Every
// write is logged.
package resctrltest
