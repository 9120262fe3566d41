package place

// Well-known resource dimensions. Any other name is an extended resource
// (e.g. "example.com/fpga"); hosts that do not list a dimension have none
// of it. GPUs are not a dimension: they are devices (see Host.GPUs and
// GPURequest) because which device a request takes matters.
const (
	// DimCPU is CPU in milli-CPUs.
	DimCPU = "cpu"
	// DimMemory is memory in bytes.
	DimMemory = "memory"
	// DimDisk is local disk in bytes.
	DimDisk = "disk"
)

// GPUMilliPerDevice is what one GPU device holds, in milli-GPUs. Shared
// requests take a fraction of one device; several may share it up to this.
const GPUMilliPerDevice = 1000

// Resources is an amount per named dimension. Units belong to the
// dimension (see DimCPU, DimMemory) and must agree between hosts and
// requests. Negative amounts are rejected.
type Resources map[string]int64

// GPURequest is the GPU part of a request: either Count whole devices or
// a SharedMilli fraction (1..999) of one device, never both.
type GPURequest struct {
	// Count is the number of whole devices (0..host GPUs).
	Count int
	// SharedMilli is a share of one device in milli-GPUs, 1..999.
	SharedMilli int64
	// Models, when not empty, is the set of GPU models the request accepts.
	Models []string
}

// Milli is the request's total GPU demand in milli-GPUs.
func (g GPURequest) Milli() int64 {
	return int64(g.Count)*GPUMilliPerDevice + g.SharedMilli
}

// Host is one machine as the brain sees it.
type Host struct {
	// Name is unique in the snapshot.
	Name string
	// Labels drive host selectors and failure domains (e.g. "rack", "zone").
	Labels map[string]string
	// Capacity is what the host offers to placements, per dimension.
	Capacity Resources
	// GPUs is the number of GPU devices; each holds GPUMilliPerDevice.
	GPUs int
	// GPUModel names the devices' model ("T4", "V100M32"); empty when GPUs is 0.
	GPUModel string
}
