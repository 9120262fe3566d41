package qos

// NotEnforced names the sections of p that parse and validate but that no
// enforcer applies yet, in file order, each only when its values ask for
// something: rdt while enabled. Such sections keep loading (copies of the default policy
// carry them), and everything that loads a policy shows this list, so nobody
// mistakes a validated value for one in force. When an enforcer for a
// section lands, its line here goes.
func (p Policy) NotEnforced() []string {
	var out []string
	if p.RDT.Enabled {
		out = append(out, "rdt")
	}
	return out
}
