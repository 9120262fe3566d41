package qos

// NotEnforced names the sections of p that parse and validate but that no
// enforcer applies yet, in file order, each only when its values ask for
// something: llc while either cap is below 100%, network while devices are
// listed. Such sections keep loading (copies of the default policy carry
// them), and everything that loads a policy shows this list, so nobody
// mistakes a validated value for one in force. When an enforcer for a
// section lands, its line here goes.
func (p Policy) NotEnforced() []string {
	var out []string
	if capsBelowAll(p.LLC.OfflineWaysMax) || capsBelowAll(p.LLC.OfflineMemBandwidthMax) {
		out = append(out, "llc")
	}
	if len(p.Network.Devices) > 0 {
		out = append(out, "network")
	}
	return out
}

// capsBelowAll reports whether share (a fraction; 0 means unset) caps
// anything.
func capsBelowAll(share float64) bool { return share > 0 && share < 1 }
