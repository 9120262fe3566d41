// Command netbench is the network tiers benchmark (make bench-net). In
// network namespaces it builds a host whose uplink is shaped to a fixed
// rate, runs an online request/response service driven open-loop (a fixed
// request schedule; latency counts from the scheduled send, so a stalled
// connection cannot hide its backlog) and an offline bulk sender, under
// four conditions: online alone, with the bronze flood and no tiers (one
// FIFO at the link rate), with static tiers (bronze held to its guaranteed
// share) and with Sluice's dynamic tiers (netqos.Decide each tick).
// Conditions run interleaved for several rounds; one table reports each
// condition's median and spread.
//
// The online and bulk sockets carry their tier's class in their socket
// priority, which is what the classifier's sock_create program stamps;
// the eBPF path itself is tested in netqos/classify.
package main
