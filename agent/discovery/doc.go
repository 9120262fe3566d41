// Package discovery maps every workload on the host to a QoS class and
// priority: containers from containerd (every namespace, Kubernetes CRI
// containers included) and host cgroups that are not containers, classed by
// the policy's path rules.
//
// Classification of a container, first decision wins:
//
//  1. label sluice.io/class on the container (system|online|offline);
//  2. for a Kubernetes container, the same label on its pod sandbox (the CRI
//     plugin copies pod labels onto the sandbox container, not onto the
//     application containers);
//  3. for a Kubernetes container, its pod's QoS class: BestEffort ->
//     offline, Guaranteed and Burstable -> online (see PodQOSClass for how
//     the QoS class is recovered from what containerd records);
//  4. the policy's path rules, matched against the container's cgroup path;
//  5. online: unknown work is never squeezed or killed by mistake.
//
// An invalid label value is a warning (logged once per container) and the
// next step decides. Priority comes from sluice.io/priority the same way
// (container, then sandbox), else from the rule that classed it, else 0.
//
// Pod sandbox ("pause") containers are not listed: they hold no work, and
// their pod's application containers carry the class.
//
// Containers are listed while their task exists and has not stopped; a
// container whose task exited (no restart) disappears. While containerd is
// unreachable the last containers seen stay listed (their shims and cgroups
// outlive the daemon), Status reports the outage, and rule discovery keeps
// running.
//
// Host cgroups: the tree under Config.CgroupRoot is walked to
// Config.MaxDepth levels; a cgroup is listed when a rule matches its own
// path (first matching rule wins). Children of a listed cgroup are not
// listed on their parent's account: only a rule matching the child's own
// path lists it, so nested entries are explicit in the policy. A cgroup that
// is a container's cgroup, or lies below one, is never a rule workload:
// containers win.
package discovery
