package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/qos"
)

// metrics are the agent's Prometheus series. Names follow the Prometheus
// conventions: base units (seconds, bytes, cores), _total for counters.
type metrics struct {
	hostCPUCapacity  prometheus.Gauge
	hostCPUUsed      prometheus.Gauge
	cpuUnclassed     prometheus.Gauge
	cpuSkew          prometheus.Gauge
	hostMemTotal     prometheus.Gauge
	hostMemAvailable prometheus.Gauge
	hostPSI          *prometheus.GaugeVec

	classCPU    *prometheus.GaugeVec
	classMemory *prometheus.GaugeVec
	classCount  *prometheus.GaugeVec
	workloadCPU *prometheus.GaugeVec
	workloadMem *prometheus.GaugeVec
	// workloads holds each workload's series, resolved once: hashing label
	// values for every series on every tick was a visible share of an
	// idle agent's CPU. gen marks the series seen in the current pass.
	workloads    map[workloadKey]*workloadSeries
	gen          uint64
	psi          [5]prometheus.Gauge // hostPSI, in observe's order
	classSeries  [len(qos.Classes)][3]prometheus.Gauge
	wakeupsBy    map[string]prometheus.Counter
	offlineCPU   prometheus.Gauge
	offlineHigh  prometheus.Gauge
	offlineMax   prometheus.Gauge
	pendingKills prometheus.Gauge

	decisions        prometheus.Counter
	decisionDuration prometheus.Histogram
	loopDuration     prometheus.Histogram
	wakeups          *prometheus.CounterVec
	wakesDismissed   prometheus.Counter
	ticksSkipped     prometheus.Counter
	planChanges      prometheus.Counter
	results          *prometheus.CounterVec
	kills            *prometheus.CounterVec
	sampleErrors     *prometheus.CounterVec

	policyReloads       *prometheus.CounterVec
	policyLastReload    prometheus.Gauge
	policyValid         prometheus.Gauge
	dryRun              prometheus.Gauge
	containerdConnected prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		hostCPUCapacity:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_host_cpu_capacity_cores", Help: "Online CPUs of the host."}),
		hostCPUUsed:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_host_cpu_used_cores", Help: "Busy CPU of the host over the last host tick (the root cgroup's counter; /proc/stat where it has none)."}),
		cpuUnclassed:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_cpu_unclassed_cores", Help: "Host busy CPU no class accounts for over the last host tick (counted as system)."}),
		cpuSkew:             prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_cpu_accounting_skew_cores", Help: "How far the classes added up above the host's busy CPU over the last host tick (the counter reads' own spread; a double-counted cgroup shows here)."}),
		hostMemTotal:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_host_memory_total_bytes", Help: "MemTotal from /proc/meminfo."}),
		hostMemAvailable:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_host_memory_available_bytes", Help: "MemAvailable from /proc/meminfo."}),
		hostPSI:             prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_host_pressure_avg10_ratio", Help: "PSI avg10 of the host (0-1)."}, []string{"resource", "kind"}),
		classCPU:            prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_class_cpu_used_cores", Help: "CPU used per class over the last window."}, []string{"class"}),
		classMemory:         prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_class_memory_usage_bytes", Help: "Working-set memory per class."}, []string{"class"}),
		classCount:          prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_class_workloads", Help: "Discovered workloads per class."}, []string{"class"}),
		workloadCPU:         prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_workload_cpu_used_cores", Help: "CPU used per workload over the last container window."}, []string{"id", "name", "class"}),
		workloadMem:         prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_workload_memory_usage_bytes", Help: "Working-set memory per workload."}, []string{"id", "name", "class"}),
		offlineCPU:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_offline_cpu_budget_cores", Help: "Planned offline CPU budget."}),
		offlineHigh:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_offline_memory_high_bytes", Help: "Planned offline memory reclaim threshold."}),
		offlineMax:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_offline_memory_max_bytes", Help: "Planned offline memory hard limit."}),
		pendingKills:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_pending_kills", Help: "Kill intents in the current plan."}),
		decisions:           prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_decisions_total", Help: "Decide calls."}),
		decisionDuration:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_decision_duration_seconds", Help: "Time spent in Decide.", Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10)}),
		loopDuration:        prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_loop_duration_seconds", Help: "Time of one sample-decide-enforce iteration.", Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10)}),
		wakeups:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_loop_wakeups_total", Help: "Loop iterations by cause."}, []string{"cause"}),
		wakesDismissed:      prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_ebpf_wakeups_dismissed_total", Help: "eBPF wake-ups whose confirm window showed no online jump, so no decision was made."}),
		ticksSkipped:        prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_host_ticks_skipped_total", Help: "Host ticks skipped because another wake-up had just decided (within the fast accounting's 20 ms minimum window)."}),
		planChanges:         prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_plan_changes_total", Help: "Plans that differed from the previous one."}),
		results:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_enforce_results_total", Help: "Enforcement results by intent and status."}, []string{"intent", "status"}),
		kills:               prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_kills_total", Help: "Offline workloads killed, by result."}, []string{"status"}),
		sampleErrors:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_sample_errors_total", Help: "Sampling errors by source."}, []string{"source"}),
		policyReloads:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_policy_reloads_total", Help: "Policy loads by result (success, invalid, unreadable)."}, []string{"result"}),
		policyLastReload:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_policy_last_success_timestamp_seconds", Help: "When the policy in force was loaded."}),
		policyValid:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_policy_last_load_valid", Help: "1 if the last policy load attempt succeeded, 0 if it was rejected."}),
		dryRun:              prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_dry_run", Help: "1 when enforcement is off."}),
		containerdConnected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_containerd_connected", Help: "1 when discovery reaches containerd."}),
	}
	for i, l := range [][2]string{{"cpu", "some"}, {"memory", "some"}, {"memory", "full"}, {"io", "some"}, {"io", "full"}} {
		m.psi[i] = m.hostPSI.WithLabelValues(l[0], l[1])
	}
	for i, c := range qos.Classes {
		m.classSeries[i] = [3]prometheus.Gauge{
			m.classCPU.WithLabelValues(string(c)), m.classMemory.WithLabelValues(string(c)), m.classCount.WithLabelValues(string(c)),
		}
	}
	m.workloads = map[workloadKey]*workloadSeries{}
	m.wakeupsBy = map[string]prometheus.Counter{}
	reg.MustRegister(m.hostCPUCapacity, m.hostCPUUsed, m.cpuUnclassed, m.cpuSkew, m.hostMemTotal, m.hostMemAvailable, m.hostPSI,
		m.classCPU, m.classMemory, m.classCount, m.workloadCPU, m.workloadMem,
		m.offlineCPU, m.offlineHigh, m.offlineMax, m.pendingKills,
		m.decisions, m.decisionDuration, m.loopDuration, m.wakeups, m.wakesDismissed, m.ticksSkipped, m.planChanges, m.results, m.kills, m.sampleErrors,
		m.policyReloads, m.policyLastReload, m.policyValid, m.dryRun, m.containerdConnected)
	return m
}

func (m *metrics) observe(obs qos.Observation) {
	m.hostCPUCapacity.Set(float64(obs.Host.CPUCapacityMilli) / 1000)
	m.hostCPUUsed.Set(float64(obs.Host.CPUUsedMilli) / 1000)
	m.hostMemTotal.Set(float64(obs.Host.MemTotalBytes))
	m.hostMemAvailable.Set(float64(obs.Host.MemAvailableBytes))
	p := obs.Host.PSI
	for i, v := range [...]float64{p.CPUSomeAvg10, p.MemorySomeAvg10, p.MemoryFullAvg10, p.IOSomeAvg10, p.IOFullAvg10} {
		m.psi[i].Set(v / 100)
	}
	for i, c := range qos.Classes {
		u := obs.Classes[c]
		m.classSeries[i][0].Set(float64(u.CPUUsedMilli) / 1000)
		m.classSeries[i][1].Set(float64(u.MemoryUsageBytes))
		m.classSeries[i][2].Set(float64(u.Count))
	}
}

// accounting shows the fast tick's exact class accounting.
func (m *metrics) accounting(c qos.CPUAccounting) {
	m.cpuUnclassed.Set(float64(c.UnclassedMilli) / 1000)
	m.cpuSkew.Set(float64(c.SkewMilli) / 1000)
}

// wakeup counts one loop iteration by cause.
func (m *metrics) wakeup(cause string) {
	c, ok := m.wakeupsBy[cause]
	if !ok {
		c = m.wakeups.WithLabelValues(cause)
		m.wakeupsBy[cause] = c
	}
	c.Inc()
}

// observeWorkloads updates the per-workload series and deletes those of
// workloads that went away, so exited containers disappear from /metrics.
// (Resetting the vectors every tick would rebuild every series each second.)
func (m *metrics) observeWorkloads(ws []qos.WorkloadSample) {
	m.gen++
	for _, w := range ws {
		k := workloadKey{w.ID, w.Name, string(w.Class)}
		sr, ok := m.workloads[k]
		if !ok {
			sr = &workloadSeries{cpu: m.workloadCPU.WithLabelValues(k.id, k.name, k.class), mem: m.workloadMem.WithLabelValues(k.id, k.name, k.class)}
			m.workloads[k] = sr
		}
		sr.gen = m.gen
		sr.cpu.Set(float64(w.CPUUsedMilli) / 1000)
		sr.mem.Set(float64(w.MemoryUsageBytes))
	}
	for k, sr := range m.workloads {
		if sr.gen != m.gen {
			m.workloadCPU.DeleteLabelValues(k.id, k.name, k.class)
			m.workloadMem.DeleteLabelValues(k.id, k.name, k.class)
			delete(m.workloads, k)
		}
	}
}

type workloadSeries struct {
	cpu, mem prometheus.Gauge
	gen      uint64
}

type workloadKey struct{ id, name, class string }

func (m *metrics) plan(p qos.Plan) {
	m.offlineCPU.Set(float64(p.OfflineCPU.BudgetMilli) / 1000)
	m.offlineHigh.Set(float64(p.OfflineMemory.HighBytes))
	m.offlineMax.Set(float64(p.OfflineMemory.MaxBytes))
	m.pendingKills.Set(float64(len(p.Kills)))
	if p.DryRun {
		m.dryRun.Set(1)
	} else {
		m.dryRun.Set(0)
	}
}

func (m *metrics) enforced(rs []qos.IntentResult) {
	for _, r := range rs {
		m.results.WithLabelValues(r.Intent, string(r.Status)).Inc()
		if r.Intent == qos.IntentKill {
			m.kills.WithLabelValues(string(r.Status)).Inc()
		}
	}
}
