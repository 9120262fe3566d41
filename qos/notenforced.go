package qos

// NotEnforced names the sections of p that parse and validate but that no
// enforcer applies yet, in file order, each only when its values ask for
// something. Such sections keep loading (copies of the default policy
// carry them), and everything that loads a policy shows this list (the
// agent's log at each load, /state, sluicectl policy check and status), so
// nobody mistakes a validated value for one in force. Today every section
// is enforced (rdt: resctrl; network: tc and the eBPF classifier), so the
// list is empty; a section added ahead of its enforcer gets a line here.
func (p Policy) NotEnforced() []string {
	return nil
}
