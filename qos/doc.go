// Package qos is Sluice's decision core and policy model.
//
// Decide turns an Observation (what the host looks like now), a Policy (what
// the SRE asked for), Targets (what the brain asked for) and the previous
// State into a Plan (typed intents, each with a reason a person can read) and
// the next State. It is pure: no clock reads (time arrives in the
// observation), no I/O, no goroutines, no logging. A test enforces that this
// package imports no I/O packages.
package qos
