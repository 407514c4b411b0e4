package apiserver

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
)

// GET /metrics: what ECS publishes to CloudWatch for capacity, read from the
// cache at scrape time (nothing is kept in memory between scrapes).

var (
	metricReservation = prometheus.NewDesc("ecsd_capacity_provider_reservation_percent",
		"CapacityProviderReservation of a capacity provider with managed scaling, as last computed (instances needed / running × 100).",
		[]string{"account", "region", "capacity_provider"}, nil)
	metricNodeGroupDesired = prometheus.NewDesc("ecsd_node_group_desired_nodes",
		"Desired node count of a node group.", []string{"account", "region", "node_group"}, nil)
	metricNodeGroupNodes = prometheus.NewDesc("ecsd_node_group_nodes",
		"Nodes of a node group by state (Pending, InService, Terminating).", []string{"account", "region", "node_group", "state"}, nil)
	metricWaitingTasks = prometheus.NewDesc("ecsd_tasks_waiting_for_capacity",
		"Tasks in PROVISIONING without an instance, waiting for capacity, by cluster and capacity provider (or launch type).",
		[]string{"account", "region", "cluster", "target"}, nil)
)

// capacityCollector reads the metrics from the cache's current snapshot.
type capacityCollector struct{ cache *cache.Cache }

func (capacityCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- metricReservation
	ch <- metricNodeGroupDesired
	ch <- metricNodeGroupNodes
	ch <- metricWaitingTasks
}

func (m capacityCollector) Collect(ch chan<- prometheus.Metric) {
	type waitKey struct{ account, region, cluster, target string }
	waiting := map[waitKey]int{}
	m.cache.Snapshot().Walk(resource.Root, func(e *cache.Entry) bool {
		switch r := e.Obj.(type) {
		case *resource.CapacityProvider:
			if r.Reservation != nil && r.DeletedAt == nil {
				ch <- prometheus.MustNewConstMetric(metricReservation, prometheus.GaugeValue, *r.Reservation, r.Scope.Account, r.Scope.Region, r.Name)
			}
		case *resource.NodeGroup:
			ch <- prometheus.MustNewConstMetric(metricNodeGroupDesired, prometheus.GaugeValue, float64(r.Desired), r.Scope.Account, r.Scope.Region, r.Name)
			states := map[string]int{resource.NodePending: 0, resource.NodeInService: 0, resource.NodeTerminating: 0}
			for _, n := range r.Nodes {
				states[n.State]++
			}
			for state, n := range states {
				ch <- prometheus.MustNewConstMetric(metricNodeGroupNodes, prometheus.GaugeValue, float64(n), r.Scope.Account, r.Scope.Region, r.Name, state)
			}
		case *resource.Task:
			if r.Waiting() {
				target := r.CapacityProviderName
				if target == "" {
					target = string(r.LaunchType)
				}
				waiting[waitKey{r.Scope.Account, r.Scope.Region, r.Cluster, target}]++
			}
		}
		return true
	})
	for k, n := range waiting {
		ch <- prometheus.MustNewConstMetric(metricWaitingTasks, prometheus.GaugeValue, float64(n), k.account, k.region, k.cluster, k.target)
	}
}

// metricsHandler serves the capacity metrics and the Go runtime's.
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(capacityCollector{cache: s.cache}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
