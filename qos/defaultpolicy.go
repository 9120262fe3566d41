package qos

import _ "embed"

// DefaultPolicyYAML is the default policy file, shipped in the binary. It
// doubles as the SRE reference for the policy format. Treat it as read-only.
//
//go:embed default-policy.yaml
var DefaultPolicyYAML []byte

// DefaultPolicy is the policy the agent runs with when given no file: the
// parsed DefaultPolicyYAML. It panics only if the embedded file is broken,
// which the package's tests rule out.
func DefaultPolicy() Policy {
	pol, err := ParsePolicy("default-policy.yaml", DefaultPolicyYAML)
	if err != nil {
		panic("qos: embedded default policy is invalid: " + err.Error())
	}
	return pol
}
