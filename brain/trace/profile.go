package trace

// GenericProfile is the planning profile of a generic file: how the cost
// planner (brain/plan) weighs utilisation above a target. Flags of the
// planning modes override it field by field.
//
//	profile:
//	  penalty:
//	    cpu:    {target: 0.5, steepness: 4, weight: 1}
//	    memory: {target: 0.8, steepness: 4, weight: 1}
type GenericProfile struct {
	// Penalty maps a dimension (cpu, memory, disk or an extended
	// resource) to its utilisation penalty.
	Penalty map[string]GenericPenalty `yaml:"penalty,omitempty"`
}

// GenericPenalty is one dimension's convex penalty: at every curve point
// a host whose utilisation u exceeds Target costs
// Weight * (exp(Steepness*(u-Target)) - 1 - Steepness*(u-Target)) / points
// times the host's cost. Zero fields keep the planner's default.
type GenericPenalty struct {
	Target    float64 `yaml:"target,omitempty"`
	Steepness float64 `yaml:"steepness,omitempty"`
	Weight    float64 `yaml:"weight,omitempty"`
}
