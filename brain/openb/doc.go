// Package openb replays the openb experiment of the FGD paper ("Beware of
// Fragmentation", USENIX ATC'23) on Sluice's placement core: Alibaba's
// production GPU cluster trace (cluster-trace-gpu-v2023), 1,213 GPU hosts,
// pods arriving one at a time until 1.3 x the cluster's GPUs have been
// asked for, nothing leaving. It loads the trace's CSV files (errors name
// file, line and column), converts nodes and pods to place hosts and
// requests, and runs one strategy for one seed, recording the allocation
// curve and the fragmentation at 90% arrived demand.
package openb
