// Package brainlink is the agent's side of the brain protocol: a node ID
// generated once and kept on disk, registration, heartbeats carrying what
// the agent reports, the host's versioned target followed over a stream
// (deltas applied on top of the held version, full documents replacing
// it), the last target persisted on disk before it is exposed, and
// acknowledgements of what the agent applied.
//
// An agent that loses the brain keeps its last target (also across a
// restart, from the persisted copy); once it has heard nothing for longer
// than Config.Staleness, Effective drops the host's QoS overrides so local
// policy rules again, while the containers stay as they were.
//
// The agent loop wires it: Run in a goroutine with a Reporter, Effective
// each tick for the containers to converge and the overrides to hand to
// qos.Decide, Applied after converging.
package brainlink
