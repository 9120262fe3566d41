package cgroup

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/qos"
)

// Kernel limits and the values Sluice writes for offline work.
const (
	// DefaultCPUPeriod is the CFS period Sluice writes (the kernel's default).
	DefaultCPUPeriod = 100 * time.Millisecond
	// minQuotaMicros is the kernel's min_cfs_quota_period (see qos.MinCPUQuotaMicros).
	minQuotaMicros = qos.MinCPUQuotaMicros
)

// sharesOfWeight converts a cgroup v2 cpu.weight (1-10000) to v1
// cpu.shares (2-262144), the inverse of runc's shares-to-weight
// conversion: weight 1 is MIN_SHARES (2), 10000 is MAX_SHARES (262144).
func sharesOfWeight(w uint64) uint64 {
	w = min(max(w, 1), 10000)
	return 2 + (w-1)*262142/9999
}

// budgetMilli is the CFS budget in milli-CPUs of a quota over a period.
func budgetMilli(quotaMicros int64, periodMicros int64) int64 {
	if periodMicros <= 0 {
		return 0
	}
	return quotaMicros * 1000 / periodMicros
}

// ratioGreater reports whether q1/p1 > q2/p2 without overflow, the
// comparison the kernel makes between a child's and its parent's quota.
func ratioGreater(q1, p1, q2, p2 uint64) bool {
	h1, l1 := bits.Mul64(q1, p2)
	h2, l2 := bits.Mul64(q2, p1)
	return h1 > h2 || (h1 == h2 && l1 > l2)
}

// pageFloor rounds bytes down to a page, as the kernel does when it stores
// a memory limit, so a value read back compares equal to what was asked.
// A non-zero limit below one page becomes one page: 0 means "no limit" in
// Sluice's types, and a limit of zero pages would OOM everything.
func pageFloor(b uint64, pageSize int) uint64 {
	if pageSize <= 0 {
		return b
	}
	if b > 0 && b < uint64(pageSize) {
		return uint64(pageSize)
	}
	return b - b%uint64(pageSize)
}

// parseCPUMax parses v2 cpu.max: "max 100000" or "50000 100000". quota is
// -1 for max.
func parseCPUMax(data []byte) (quota int64, period int64, err error) {
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("parse cpu.max %q: want \"<quota|max> <period>\"", data)
	}
	if f[0] == "max" {
		quota = -1
	} else if quota, err = strconv.ParseInt(f[0], 10, 64); err != nil || quota < 0 {
		return 0, 0, fmt.Errorf("parse cpu.max %q: bad quota", data)
	}
	if period, err = strconv.ParseInt(f[1], 10, 64); err != nil || period <= 0 {
		return 0, 0, fmt.Errorf("parse cpu.max %q: bad period", data)
	}
	return quota, period, nil
}

// parsePIDs parses cgroup.procs: one decimal pid per line.
func parsePIDs(data []byte) ([]int, error) {
	var pids []int
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		pid, err := strconv.Atoi(line)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("parse cgroup.procs line %q: not a pid", line)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
