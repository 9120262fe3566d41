// Package e2e holds end-to-end tests of the agent against the real kernel
// and a private containerd: discovery, classification, sampling and the
// loop wired as sluice-agent wires them.
package e2e
