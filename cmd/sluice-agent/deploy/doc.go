// Package deploy holds sluice-agent's deployment files (systemd unit,
// DaemonSet) and the Grafana dashboard for agents and the brain
// (grafana-dashboard.json). Its test checks the dashboard against what
// the real binaries export on /metrics.
package deploy
