package resctrltest

import "github.com/sluicehq/sluice/rdt"

var mon = []string{rdt.EventOccupancy, rdt.EventMBMTotal, rdt.EventMBMLocal}

// IntelL3 is one socket with an 11-way L3 (CAT only, no MBA).
func IntelL3() rdt.Hardware {
	return rdt.Hardware{
		Caches:     []rdt.CacheResource{{Name: "L3", CBMMask: 0x7ff, MinCBMBits: 1, ShareableBits: 0x600, NumCLOSIDs: 16, Domains: []int{0}}},
		Monitoring: mon, NumRMIDs: 144,
	}
}

// IntelL3MB is one socket with an 11-way L3 and MBA in 10% steps from 10%.
func IntelL3MB() rdt.Hardware {
	hw := IntelL3()
	hw.MB = &rdt.MemBandwidth{Granularity: 10, Min: 10, MaxValue: 100, DelayLinear: true, Unit: rdt.MBPercent, NumCLOSIDs: 8, Domains: []int{0}}
	return hw
}

// IntelCDP is a 20-way L3 mounted with -o cdp: code and data masks apart,
// half the CLOSIDs.
func IntelCDP() rdt.Hardware {
	return rdt.Hardware{
		Caches: []rdt.CacheResource{
			{Name: "L3CODE", CBMMask: 0xfffff, MinCBMBits: 1, NumCLOSIDs: 8, Domains: []int{0}},
			{Name: "L3DATA", CBMMask: 0xfffff, MinCBMBits: 1, NumCLOSIDs: 8, Domains: []int{0}},
		},
		Monitoring: mon, NumRMIDs: 176,
	}
}

// IntelTwoSocket is two sockets (cache and MB domains 0 and 1), 11 ways,
// MBA, and min_cbm_bits 2 as on some Haswell parts.
func IntelTwoSocket() rdt.Hardware {
	return rdt.Hardware{
		Caches:     []rdt.CacheResource{{Name: "L3", CBMMask: 0x7ff, MinCBMBits: 2, NumCLOSIDs: 16, Domains: []int{0, 1}}},
		MB:         &rdt.MemBandwidth{Granularity: 10, Min: 10, MaxValue: 100, DelayLinear: true, Unit: rdt.MBPercent, NumCLOSIDs: 8, Domains: []int{0, 1}},
		Monitoring: mon, NumRMIDs: 176,
	}
}

// AMD is an AMD EPYC-style host: a 16-way L3 per CCX with cache ids 0, 3
// and 8, sparse masks allowed, and absolute MB limits in 1/8 GB/s units
// (2048 = unthrottled), granularity 1, no minimum.
func AMD() rdt.Hardware {
	return rdt.Hardware{
		Caches:     []rdt.CacheResource{{Name: "L3", CBMMask: 0xffff, MinCBMBits: 1, NumCLOSIDs: 16, SparseMasks: true, Domains: []int{0, 3, 8}}},
		MB:         &rdt.MemBandwidth{Granularity: 1, Min: 0, MaxValue: 2048, Unit: rdt.MBAbsolute, NumCLOSIDs: 16, Domains: []int{0, 3, 8}},
		Monitoring: mon, NumRMIDs: 256,
	}
}

// Variants lists every hardware variant by name.
func Variants() map[string]rdt.Hardware {
	return map[string]rdt.Hardware{
		"intel-l3": IntelL3(), "intel-l3-mb": IntelL3MB(), "intel-cdp": IntelCDP(),
		"intel-two-socket": IntelTwoSocket(), "amd": AMD(),
	}
}
