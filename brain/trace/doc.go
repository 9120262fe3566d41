// Package trace reads and writes the cluster data the simulator replays:
// Alibaba cluster-trace-v2018 metadata, a synthetic generator in exactly
// that schema, and a generic hand-written format.
//
// # cluster-trace-v2018
//
// machine_meta.csv and container_meta.csv have no header; their columns are,
// in order (alibaba/clusterdata cluster-trace-v2018/schema.md):
//
//	machine_meta:   machine_id, time_stamp, failure_domain_1, failure_domain_2, cpu_num, mem_size, status
//	container_meta: container_id, machine_id, time_stamp, app_du, status, cpu_request, cpu_limit, mem_size
//
// CPU requests and limits are in 1/100 cores; memory is normalised to
// [0,100]. Containers of one app_du (deploy unit) should be spread across
// failure domains. ReadMachines and ReadContainers stream rows and stop at
// the first bad one with a ParseError naming file, line and column.
// LoadV2018 estimates the memory a trace needs from its file sizes and
// refuses, before reading, one larger than the budget (ErrTooLarge).
// GenerateV2018 writes a seeded synthetic cluster at the published scale
// (V2018Scale: 4,034 hosts of 96 cores, 71,000 containers in 9,800 deploy
// units with heavy-tailed sizes and 1/2/4/8/16-core shapes).
//
// # Generic format
//
// A YAML (or JSON, which is YAML) document, decoded strictly: unknown
// fields are errors, and every invalid value is reported at once with its
// path and line. CPU is written in cores ("4", "0.5") or millis ("500m");
// memory and disk in bytes with an optional Ki/Mi/Gi/Ti or K/M/G/T suffix.
//
//	version: 1                 # required, must be 1
//	curve_points: 96           # length of every demand curve (0 = no curves)
//	domain_label: rack         # host label naming failure domains (default failure_domain)
//	lending: false             # groups may borrow quota others leave unused
//	hosts:
//	  - name: big              # with count: N, hosts big-0 .. big-(N-1)
//	    count: 4
//	    cpu: 96
//	    memory: 384Gi
//	    disk: 2Ti              # optional
//	    gpus: 8                # optional, whole devices
//	    gpu_model: V100        # required with gpus
//	    extended: {example.com/fpga: 2}
//	    labels: {zone: a}
//	    failure_domain: rack-1 # sets the domain_label label
//	    cost: 2.5              # one host's cost in a planning objective (default 1)
//	apps:
//	  - name: web
//	    cpu: 4
//	    memory: 8Gi
//	    gpu: {count: 1, models: [V100]}   # or {shared_milli: 250}
//	    curves:                # optional, per cpu/memory: curve_points fractions in [0,1] of the peak
//	      cpu: [0.2, 0.3, ...]
//	      memory: "0.8 0.9 ..."  # the same, compact: one string (long curves are written so)
//	    selector: {zone: a}    # hosts must carry all these labels
//	    anti_affinity:         # on a host running web, at most max_together db
//	      - {app: db, max_together: 0}
//	      - {app: web, max_together: 2}  # the app itself: at most 2 web per host, counting all
//	    max_per_host: 1        # at most one web per host
//	    spread: {max_skew: 1}  # balance across failure domains (domain_label optional)
//	    class: online          # system, online (default) or offline
//	    image: busybox:latest  # what a running instance needs (the simulator ignores it)
//	    command: [httpd, -f]
//	    env: {MODE: fast}
//	    restart: always        # always (default), on-failure or never
//	requests:
//	  - {app: web, count: 10, priority: 100, group: team-a, preempt: false}
//	  - {name: web-canary, app: web, count: 1}   # name: the job's name when submitted
//	  - {app: db, count: 3, on: [big-0, big-0]}  # existing placements (simulation only)
//	quotas:                    # a field left out (or 0) is not capped
//	  - {group: team-a, cpu: 200, memory: 1Ti, gpu_milli: 4000}
//
// on lists where the request's first instances run now (len(on) <= count,
// hosts named by the file; a host may repeat). The simulator starts from
// them and places the rest. Existing placements that overflow a host,
// miss a selector, break an anti-affinity rule or a quota make the file
// invalid, with each problem named (see brain/sim.FromGeneric for why).
// Spread is not checked on them: like Kubernetes topology spread, it
// constrains new placements only.
//
// testdata/example.yaml is a complete example.
//
// # Jobs
//
// A job file is a generic file submitted to a brain: every request becomes
// a job named by the request's name (default its app's), which must be a
// DNS label, and its app must name an image. Hosts are optional there and
// only used when the same file is simulated. DecodeJobs reads at most
// MaxJobFileBytes; DecodeGeneric at most MaxGenericBytes.
// ../examples/jobs.yaml is a complete job file.
package trace
