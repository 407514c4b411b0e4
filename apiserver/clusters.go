package apiserver

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/capacity"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Cluster operations: CreateCluster, DescribeClusters, ListClusters,
// UpdateCluster, UpdateClusterSettings, DeleteCluster, and the cluster lookup
// every cluster-scoped operation uses (resolveCluster).
//
// A deleted cluster is not removed: it stays stored as INACTIVE (with
// DeletedAt) so DescribeClusters keeps reporting it, as ECS does for a while
// and as Terraform's destroy waits to see. CreateCluster on that name makes it
// afresh.

const (
	defaultClusterName    = "default"
	clusterStatusActive   = "ACTIVE"
	clusterStatusInactive = "INACTIVE"
	maxDescribeClusters   = 100
	maxListClusters       = 100
	// maxClusterCapacityProviders is ECS's quota of providers per cluster.
	maxClusterCapacityProviders = 20
)

var clusterNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)

func (s *Server) registerClusters() {
	s.ops[ecs.OpCreateCluster] = op(s.createCluster)
	s.ops[ecs.OpDescribeClusters] = op(s.describeClusters)
	s.ops[ecs.OpListClusters] = op(s.listClusters)
	s.ops[ecs.OpUpdateCluster] = s.updateClusterHandler
	s.ops[ecs.OpUpdateClusterSettings] = op(s.updateClusterSettings)
	s.ops[ecs.OpDeleteCluster] = op(s.deleteCluster)
	s.ops[ecs.OpPutClusterCapacityProviders] = op(s.putClusterCapacityProviders)
}

// errClusterNotFound is ECS's answer for a missing or INACTIVE cluster.
func errClusterNotFound() error { return ecs.Errorf(ecs.CodeClusterNotFound, "Cluster not found.") }

// ---- CreateCluster

func (s *Server) createCluster(c *Call, in *ecs.CreateClusterRequest) (*ecs.CreateClusterResponse, error) {
	name := in.ClusterName
	if name == "" {
		name = defaultClusterName
	}
	if !clusterNameRE.MatchString(name) {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "clusterName: %q is not valid: up to 255 letters (uppercase and lowercase), numbers, hyphens and underscores are allowed.", name)
	}
	settings, err := mergeClusterSettings("settings", nil, in.Settings)
	if err != nil {
		return nil, err
	}
	if err := validateClusterTags("tags", in.Tags); err != nil {
		return nil, err
	}
	if err := validateClusterConfiguration("configuration", in.Configuration); err != nil {
		return nil, err
	}
	if err := validateClusterCapacityProviders(in.CapacityProviders, in.DefaultCapacityProviderStrategy); err != nil {
		return nil, err
	}
	providers := in.CapacityProviders
	rec := s.newClusterRecord(c, name, settings)
	rec.Tags = in.Tags
	rec.Configuration = in.Configuration
	rec.CapacityProviders = in.CapacityProviders
	rec.DefaultCapacityProviderStrategy = in.DefaultCapacityProviderStrategy
	if in.ServiceConnectDefaults != nil {
		// Stored as given: ecsd has no Cloud Map to turn a namespace name into an ARN.
		rec.ServiceConnectDefaults = &ecs.ClusterServiceConnectDefaults{Namespace: in.ServiceConnectDefaults.Namespace}
	}
	got, _, err := s.storeNewCluster(c, rec, func() ([]store.Op, error) {
		// Only capacity providers that exist can be associated, and a node-group
		// provider with one cluster only.
		return s.clusterProviderOps(c, name, "capacityProviders", providers, nil)
	})
	if err != nil {
		return nil, err
	}
	view := s.clusterResponse(c, got)
	return &ecs.CreateClusterResponse{Cluster: &view}, nil
}

// newClusterRecord is an ACTIVE cluster with the given settings, filling in the
// containerInsights setting from the account's default when absent (ECS
// always reports it).
func (s *Server) newClusterRecord(c *Call, name string, settings []ecs.ClusterSetting) *resource.Cluster {
	scope := c.Scope()
	if !hasClusterSetting(settings, ecs.ClusterSettingNameContainerInsights) {
		settings = append(settings, ecs.ClusterSetting{Name: ecs.ClusterSettingNameContainerInsights, Value: s.defaultContainerInsights(c)})
	}
	return &resource.Cluster{
		Cluster: ecs.Cluster{
			ClusterArn:  scope.ClusterARN(name),
			ClusterName: name,
			Status:      clusterStatusActive,
			Settings:    settings,
		},
		Scope: scope,
	}
}

// storeNewCluster writes rec unless an ACTIVE cluster of that name exists, in
// which case that one is returned unchanged (CreateCluster is idempotent in
// ECS). An INACTIVE record of the name is replaced. Races between creators are
// settled by the store's compare-and-swap: the loser re-reads. extra, when
// given, checks what the new record refers to and returns the conditions to
// commit with it; it runs on every attempt, against fresh state.
func (s *Server) storeNewCluster(c *Call, rec *resource.Cluster, extra func() ([]store.Op, error)) (*resource.Cluster, int64, error) {
	key := c.Scope().ClusterKey(rec.ClusterName)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		cur, rev, ok := Get[resource.Cluster](c, key)
		if ok && cur.Status == clusterStatusActive {
			return cur, rev, nil
		}
		op := store.Create(key, resource.Encode(rec))
		if ok {
			op = store.Update(key, resource.Encode(rec), rev)
		}
		ops := []store.Op{op}
		if extra != nil {
			more, err := extra()
			if err != nil {
				return nil, 0, err
			}
			ops = append(ops, more...)
		}
		newRev, err := c.Commit(ops...)
		if errors.Is(err, store.ErrConflict) {
			if err := c.afterConflict(key, attempt); err != nil {
				return nil, 0, err
			}
			if err := afterProvidersConflict(c, attempt, rec.CapacityProviders); err != nil {
				return nil, 0, err
			}
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		// The key's modification revision is the transaction's revision.
		return rec, newRev, nil
	}
	return nil, 0, ecs.Errorf(ecs.CodeUpdateInProgress, "Cluster %s is being changed by another request; retry.", rec.ClusterName)
}

// defaultContainerInsights is the containerInsights account setting in force
// for the caller (own, else account default, else ECS's default).
func (s *Server) defaultContainerInsights(c *Call) string {
	return s.accountSetting(c, ecs.SettingNameContainerInsights)
}

// ---- DescribeClusters

func (s *Server) describeClusters(c *Call, in *ecs.DescribeClustersRequest) (*ecs.DescribeClustersResponse, error) {
	refs := in.Clusters
	if len(refs) == 0 {
		refs = []string{defaultClusterName}
	}
	if len(refs) > maxDescribeClusters {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "clusters: at most %d clusters can be described at once; got %d.", maxDescribeClusters, len(refs))
	}
	out := &ecs.DescribeClustersResponse{Clusters: []ecs.Cluster{}, Failures: []ecs.Failure{}}
	scope := c.Scope()
	for _, ref := range refs {
		name, err := parseClusterRef(scope, ref)
		if err != nil {
			// A batch describe reports what it cannot find instead of failing.
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = scope.ClusterARN(ref)
			}
			out.Failures = append(out.Failures, ecs.Failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		// describeCluster only reads: the shared cached record needs no copy.
		rec, ok := Peek[resource.Cluster](c.Snapshot(), scope.ClusterKey(name))
		if !ok {
			out.Failures = append(out.Failures, ecs.Failure{Arn: scope.ClusterARN(name), Reason: "MISSING"})
			continue
		}
		out.Clusters = append(out.Clusters, s.describeCluster(c, rec, in.Include))
	}
	return out, nil
}

// describeCluster builds the wire view of a stored cluster. The counts are
// computed from the records under the cluster; settings, tags and statistics
// are [] unless included, configuration and attachments are omitted unless
// included, as ECS answers.
func (s *Server) describeCluster(c *Call, rec *resource.Cluster, include []ecs.ClusterField) ecs.Cluster {
	v := ecs.Cluster{
		ClusterArn:                      rec.ClusterArn,
		ClusterName:                     rec.ClusterName,
		Status:                          rec.Status,
		CapacityProviders:               wireList(rec.CapacityProviders),
		DefaultCapacityProviderStrategy: wireList(rec.DefaultCapacityProviderStrategy),
		Settings:                        []ecs.ClusterSetting{},
		Tags:                            []ecs.Tag{},
		Statistics:                      []ecs.KeyValuePair{},
	}
	if rec.ServiceConnectDefaults != nil {
		v.ServiceConnectDefaults = &ecs.ClusterServiceConnectDefaults{Namespace: rec.ServiceConnectDefaults.Namespace}
	}
	var counts clusterCounts
	if rec.Status == clusterStatusActive {
		// An INACTIVE cluster counts nothing, whatever stale records remain.
		counts = countCluster(c.Snapshot(), c.Scope(), rec.ClusterName)
	}
	v.ActiveServicesCount = counts.ActiveServices
	v.RunningTasksCount = counts.RunningTasks
	v.PendingTasksCount = counts.PendingTasks
	v.RegisteredContainerInstancesCount = counts.Instances
	for _, f := range include {
		switch f {
		case ecs.ClusterFieldSETTINGS:
			v.Settings = wireList(rec.Settings)
		case ecs.ClusterFieldTAGS:
			v.Tags = wireList(rec.Tags)
		case ecs.ClusterFieldCONFIGURATIONS:
			v.Configuration = rec.Configuration
		case ecs.ClusterFieldSTATISTICS:
			v.Statistics = counts.statistics()
		case ecs.ClusterFieldATTACHMENTS:
			v.Attachments = wireList(rec.Attachments)
			if len(rec.Attachments) > 0 {
				v.AttachmentsStatus = rec.AttachmentsStatus
			}
		}
	}
	return v
}

// clusterResponse is the view the writing operations (create, update, delete)
// return: everything but statistics, attachments only when there are some.
func (s *Server) clusterResponse(c *Call, rec *resource.Cluster) ecs.Cluster {
	include := []ecs.ClusterField{ecs.ClusterFieldSETTINGS, ecs.ClusterFieldTAGS, ecs.ClusterFieldCONFIGURATIONS}
	if len(rec.Attachments) > 0 {
		include = append(include, ecs.ClusterFieldATTACHMENTS)
	}
	return s.describeCluster(c, rec, include)
}

// ---- ListClusters

func (s *Server) listClusters(c *Call, in *ecs.ListClustersRequest) (*ecs.ListClustersResponse, error) {
	limit := maxListClusters
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxListClusters {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "maxResults: must be between 1 and %d; got %d.", maxListClusters, *in.MaxResults)
		}
		limit = int(*in.MaxResults)
	}
	scope := c.Scope()
	prefix := scope.KindPrefix(resource.KindCluster)
	from := prefix
	if in.NextToken != "" {
		after, err := decodeClusterListToken(in.NextToken)
		if err != nil {
			return nil, err
		}
		// Resume strictly after the last cluster returned.
		from = scope.ClusterKey(after) + "\x00"
	}
	out := &ecs.ListClustersResponse{ClusterArns: []string{}}
	last := ""
	c.Snapshot().WalkFrom(prefix, from, func(e *cache.Entry) bool {
		rec, ok := e.Obj.(*resource.Cluster)
		if !ok || rec.Status != clusterStatusActive {
			return true
		}
		if len(out.ClusterArns) == limit {
			out.NextToken = encodeClusterListToken(last)
			return false
		}
		out.ClusterArns = append(out.ClusterArns, rec.ClusterArn)
		last = rec.ClusterName
		return true
	})
	return out, nil
}

// The list token is opaque to clients: a versioned, encoded cluster name to
// resume after. Listing is in key order, so pages are stable under concurrent
// creates and deletes (nothing is returned twice).
const clusterListTokenPrefix = "ecsd.clusters.v1:"

func encodeClusterListToken(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(clusterListTokenPrefix + after))
}

func decodeClusterListToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	after, ok := strings.CutPrefix(string(b), clusterListTokenPrefix)
	if err != nil || !ok || !clusterNameRE.MatchString(after) {
		return "", ecs.Errorf(ecs.CodeInvalidParameter, "nextToken: the token is not valid; pass the nextToken of a previous ListClusters response.")
	}
	return after, nil
}

// ---- UpdateCluster, UpdateClusterSettings

// updateClusterHandler decodes UpdateCluster itself: serviceConnectDefaults with
// an empty namespace removes the cluster's default namespace in ECS, which the
// generic validation would reject as a missing namespace.
func (s *Server) updateClusterHandler(c *Call, body []byte) (any, error) {
	in := new(ecs.UpdateClusterRequest)
	if err := decodeInput(body, in); err != nil {
		return nil, err
	}
	var probe struct {
		ServiceConnectDefaults *struct {
			Namespace *string `json:"namespace"`
		} `json:"serviceConnectDefaults"`
	}
	removeNamespace := false
	if json.Unmarshal(body, &probe) == nil && probe.ServiceConnectDefaults != nil &&
		probe.ServiceConnectDefaults.Namespace != nil && *probe.ServiceConnectDefaults.Namespace == "" {
		removeNamespace = true
		in.ServiceConnectDefaults = nil
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	return s.updateCluster(c, in, removeNamespace)
}

func (s *Server) updateCluster(c *Call, in *ecs.UpdateClusterRequest, removeNamespace bool) (*ecs.UpdateClusterResponse, error) {
	if _, err := mergeClusterSettings("settings", nil, in.Settings); err != nil {
		return nil, err
	}
	if err := validateClusterConfiguration("configuration", in.Configuration); err != nil {
		return nil, err
	}
	rec, err := s.mutateActiveCluster(c, in.Cluster, func(cur *resource.Cluster) error {
		settings, err := mergeClusterSettings("settings", cur.Settings, in.Settings)
		if err != nil {
			return err
		}
		cur.Settings = settings
		if cfg := in.Configuration; cfg != nil && (cfg.ExecuteCommandConfiguration != nil || cfg.ManagedStorageConfiguration != nil) {
			// Each part of the configuration given replaces the stored one; parts
			// not given are kept.
			if cur.Configuration == nil {
				cur.Configuration = &ecs.ClusterConfiguration{}
			}
			if in.Configuration.ExecuteCommandConfiguration != nil {
				cur.Configuration.ExecuteCommandConfiguration = in.Configuration.ExecuteCommandConfiguration
			}
			if in.Configuration.ManagedStorageConfiguration != nil {
				cur.Configuration.ManagedStorageConfiguration = in.Configuration.ManagedStorageConfiguration
			}
		}
		switch {
		case removeNamespace:
			cur.ServiceConnectDefaults = nil
		case in.ServiceConnectDefaults != nil:
			cur.ServiceConnectDefaults = &ecs.ClusterServiceConnectDefaults{Namespace: in.ServiceConnectDefaults.Namespace}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	view := s.clusterResponse(c, rec)
	return &ecs.UpdateClusterResponse{Cluster: &view}, nil
}

func (s *Server) updateClusterSettings(c *Call, in *ecs.UpdateClusterSettingsRequest) (*ecs.UpdateClusterSettingsResponse, error) {
	if _, err := mergeClusterSettings("settings", nil, in.Settings); err != nil {
		return nil, err
	}
	rec, err := s.mutateActiveCluster(c, in.Cluster, func(cur *resource.Cluster) error {
		settings, err := mergeClusterSettings("settings", cur.Settings, in.Settings)
		cur.Settings = settings
		return err
	})
	if err != nil {
		return nil, err
	}
	view := s.clusterResponse(c, rec)
	return &ecs.UpdateClusterSettingsResponse{Cluster: &view}, nil
}

// mutateActiveCluster applies fn to a private copy of the ACTIVE cluster ref
// names and stores the result with compare-and-swap.
func (s *Server) mutateActiveCluster(c *Call, ref string, fn func(cur *resource.Cluster) error) (*resource.Cluster, error) {
	scope := c.Scope()
	name, err := parseClusterRef(scope, ref)
	if err != nil {
		return nil, err
	}
	return Mutate(c, scope.ClusterKey(name), func(cur *resource.Cluster) (*resource.Cluster, error) {
		if cur == nil || cur.Status != clusterStatusActive {
			return nil, errClusterNotFound()
		}
		if err := fn(cur); err != nil {
			return nil, err
		}
		return cur, nil
	})
}

// ---- PutClusterCapacityProviders

// putClusterCapacityProviders replaces the cluster's capacity providers and
// default strategy. Providers it drops must not be in use by the cluster's
// services or unstopped tasks.
func (s *Server) putClusterCapacityProviders(c *Call, in *ecs.PutClusterCapacityProvidersRequest) (*ecs.PutClusterCapacityProvidersResponse, error) {
	if err := validateClusterCapacityProviders(in.CapacityProviders, in.DefaultCapacityProviderStrategy); err != nil {
		return nil, err
	}
	scope := c.Scope()
	name, err := parseClusterRef(scope, in.Cluster)
	if err != nil {
		return nil, err
	}
	key := scope.ClusterKey(name)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		cur, rev, ok := Get[resource.Cluster](c, key)
		if !ok || cur.Status != clusterStatusActive {
			return nil, errClusterNotFound()
		}
		removed := removedProviders(cur.CapacityProviders, in.CapacityProviders)
		if err := providersInUse(c.Snapshot(), scope, name, removed); err != nil {
			return nil, err
		}
		touch, err := s.clusterProviderOps(c, name, "capacityProviders", in.CapacityProviders, cur.CapacityProviders)
		if err != nil {
			return nil, err
		}
		next := Clone(cur)
		next.CapacityProviders = wireList(in.CapacityProviders)
		next.DefaultCapacityProviderStrategy = wireList(in.DefaultCapacityProviderStrategy)
		newRev, err := c.Commit(append([]store.Op{store.Update(key, resource.Encode(next), rev)}, touch...)...)
		if errors.Is(err, store.ErrConflict) {
			if err := c.afterConflict(key, attempt); err != nil {
				return nil, err
			}
			if err := afterProvidersConflict(c, attempt, in.CapacityProviders); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		// A task or service stored under the cluster's old revision between the
		// check and the commit is visible now: put the providers back if one
		// uses a provider just removed.
		if err := providersInUse(c.Snapshot(), scope, name, removed); err != nil {
			if _, uerr := c.Commit(store.Update(key, resource.Encode(cur), newRev)); uerr != nil && !errors.Is(uerr, store.ErrConflict) {
				return nil, uerr
			}
			return nil, err
		}
		view := s.clusterResponse(c, next)
		return &ecs.PutClusterCapacityProvidersResponse{Cluster: &view}, nil
	}
	return nil, ecs.Errorf(ecs.CodeUpdateInProgress, "Cluster %s is being changed by another request; retry.", name)
}

// ---- DeleteCluster

func (s *Server) deleteCluster(c *Call, in *ecs.DeleteClusterRequest) (*ecs.DeleteClusterResponse, error) {
	scope := c.Scope()
	name, err := parseClusterRef(scope, in.Cluster)
	if err != nil {
		return nil, err
	}
	key := scope.ClusterKey(name)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		cur, rev, ok := Get[resource.Cluster](c, key)
		if !ok || cur.Status != clusterStatusActive {
			return nil, errClusterNotFound()
		}
		if err := clusterInUse(countCluster(c.Snapshot(), scope, name)); err != nil {
			return nil, err
		}
		next := Clone(cur)
		next.Status = clusterStatusInactive
		now := c.Now
		next.DeletedAt = &now
		newRev, err := c.Commit(store.Update(key, resource.Encode(next), rev))
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// Count again at a revision that includes the delete: a service, task or
		// instance committed between the first count and the delete is visible
		// now (those writes check the cluster's revision, so none can land after).
		// Undo the delete if one did.
		if err := clusterInUse(countCluster(c.Snapshot(), scope, name)); err != nil {
			if _, uerr := c.Commit(store.Update(key, resource.Encode(cur), newRev)); uerr != nil && !errors.Is(uerr, store.ErrConflict) {
				return nil, uerr
			}
			return nil, err
		}
		view := s.clusterResponse(c, next)
		return &ecs.DeleteClusterResponse{Cluster: &view}, nil
	}
	return nil, ecs.Errorf(ecs.CodeUpdateInProgress, "Cluster %s is being changed by another request; retry.", name)
}

// clusterInUse is ECS's refusal to delete a cluster that still holds services,
// container instances or tasks.
func clusterInUse(cc clusterCounts) error {
	switch {
	case cc.ActiveServices > 0 || cc.DrainingServices > 0:
		return ecs.Errorf(ecs.CodeClusterContainsServices, "The Cluster cannot be deleted while Services are active.")
	case cc.Instances > 0:
		return ecs.Errorf(ecs.CodeClusterContainsContainerInstances, "The Cluster cannot be deleted while Container Instances are active or draining.")
	case cc.RunningTasks > 0 || cc.PendingTasks > 0:
		return ecs.Errorf(ecs.CodeClusterContainsTasks, "The Cluster cannot be deleted while Tasks are active.")
	}
	return nil
}

// ---- Cluster lookup for every cluster-scoped operation

// resolveCluster returns a private copy of the ACTIVE cluster ref names: a name,
// a cluster ARN of the caller's account and region, or "" for "default". With
// createDefault, a missing or INACTIVE "default" cluster is created (as ECS
// does for operations that run things in the default cluster).
func (s *Server) resolveCluster(c *Call, ref string, createDefault bool) (*resource.Cluster, error) {
	rec, _, err := s.resolveClusterRev(c, ref, createDefault)
	return rec, err
}

// resolveClusterRev is resolveCluster with the cluster record's revision.
// Operations that store something under the cluster (services, tasks,
// instances) put store.Check(clusterKey, rev) in their transaction, so nothing
// lands in a cluster deleted after they looked it up.
func (s *Server) resolveClusterRev(c *Call, ref string, createDefault bool) (*resource.Cluster, int64, error) {
	scope := c.Scope()
	name, err := parseClusterRef(scope, ref)
	if err != nil {
		return nil, 0, err
	}
	rec, rev, ok := Get[resource.Cluster](c, scope.ClusterKey(name))
	if ok && rec.Status == clusterStatusActive {
		return rec, rev, nil
	}
	if !createDefault || name != defaultClusterName {
		return nil, 0, errClusterNotFound()
	}
	return s.storeNewCluster(c, s.newClusterRecord(c, name, nil), nil)
}

// parseClusterRef turns a cluster reference into a cluster name: "" is the
// default cluster; an ARN must be a cluster ARN of the caller's account and
// region.
func parseClusterRef(scope resource.Scope, ref string) (string, error) {
	if ref == "" {
		return defaultClusterName, nil
	}
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		arn, err := resource.ParseARN(ref)
		if err != nil || !strings.HasPrefix(ref, "arn:aws:ecs:") || arn.Type != "cluster" || len(arn.Parts) != 1 {
			return "", ecs.Errorf(ecs.CodeInvalidParameter, "cluster: %q is not a valid cluster ARN (arn:aws:ecs:<region>:<account>:cluster/<name>).", ref)
		}
		if arn.Scope.Region != scope.Region {
			return "", ecs.Errorf(ecs.CodeInvalidParameter, "cluster: invalid region in ARN %q: the request is for region %s.", ref, scope.Region)
		}
		if arn.Scope.Account != scope.Account {
			return "", ecs.Errorf(ecs.CodeInvalidParameter, "cluster: invalid account in ARN %q: the request is for account %s.", ref, scope.Account)
		}
		name = arn.Parts[0]
	}
	if !clusterNameRE.MatchString(name) {
		return "", ecs.Errorf(ecs.CodeInvalidParameter, "cluster: %q is not a valid cluster name or ARN; names have up to 255 letters, numbers, hyphens and underscores.", ref)
	}
	return name, nil
}

// ---- Validation shared by the cluster operations

var containerInsightsValues = []string{"enabled", "disabled", "enhanced"}

// mergeClusterSettings validates update and merges it into cur by setting name
// (a later entry for the same name wins). cur is not modified.
func mergeClusterSettings(path string, cur, update []ecs.ClusterSetting) ([]ecs.ClusterSetting, error) {
	out := append([]ecs.ClusterSetting(nil), cur...)
	for i, st := range update {
		p := path + "[" + strconv.Itoa(i) + "]"
		if st.Name == "" {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.name is required; valid names are %s.", p, strings.Join(st.Name.Values(), ", "))
		}
		if st.Value == "" {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.value is required for setting %s.", p, st.Name)
		}
		if st.Name == ecs.ClusterSettingNameContainerInsights && !slices.Contains(containerInsightsValues, st.Value) {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.value: %q is not a valid value for containerInsights; valid values are %s.", p, st.Value, strings.Join(containerInsightsValues, ", "))
		}
		replaced := false
		for j := range out {
			if out[j].Name == st.Name {
				out[j].Value = st.Value
				replaced = true
			}
		}
		if !replaced {
			out = append(out, st)
		}
	}
	return out, nil
}

func hasClusterSetting(settings []ecs.ClusterSetting, name ecs.ClusterSettingName) bool {
	for _, st := range settings {
		if st.Name == name {
			return true
		}
	}
	return false
}

// validateClusterTags checks what the model's constraints do not: a key is
// required, keys are unique, and the aws: prefix is reserved for AWS's own tags.
func validateClusterTags(path string, tags []ecs.Tag) error {
	if len(tags) > 50 {
		return ecs.Errorf(ecs.CodeInvalidParameter, "%s: at most 50 tags are allowed; got %d.", path, len(tags))
	}
	seen := make(map[string]bool, len(tags))
	for i, t := range tags {
		p := path + "[" + strconv.Itoa(i) + "]"
		switch {
		case t.Key == "":
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s.key is required.", p)
		case len([]rune(t.Key)) > 128:
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s.key must be at most 128 characters.", p)
		case len([]rune(t.Value)) > 256:
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s.value must be at most 256 characters.", p)
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s.key: %q uses the reserved prefix aws:, which only AWS may use.", p, t.Key)
		case seen[t.Key]:
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s.key: duplicate tag key %q.", p, t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

func validateClusterConfiguration(path string, cfg *ecs.ClusterConfiguration) error {
	if cfg == nil || cfg.ExecuteCommandConfiguration == nil {
		return nil
	}
	ecc := cfg.ExecuteCommandConfiguration
	if ecc.Logging == ecs.ExecuteCommandLoggingOVERRIDE && ecc.LogConfiguration == nil {
		return ecs.Errorf(ecs.CodeInvalidParameter, "%s.executeCommandConfiguration.logConfiguration is required when logging is OVERRIDE.", path)
	}
	return nil
}

// validateClusterCapacityProviders checks the providers associated with a
// cluster and the default strategy over them, as far as the request alone
// tells: which providers exist is checked by clusterProviderOps.
func validateClusterCapacityProviders(providers []string, strategy []ecs.CapacityProviderStrategyItem) error {
	if len(providers) > maxClusterCapacityProviders {
		return ecs.Errorf(ecs.CodeInvalidParameter, "capacityProviders: a cluster can have at most %d capacity providers; got %d.", maxClusterCapacityProviders, len(providers))
	}
	seen := make(map[string]bool, len(providers))
	for i, p := range providers {
		if !capacityProviderNameRE.MatchString(p) {
			return ecs.Errorf(ecs.CodeInvalidParameter, "capacityProviders[%d]: %q is not a valid capacity provider name.", i, p)
		}
		if seen[p] {
			return ecs.Errorf(ecs.CodeInvalidParameter, "capacityProviders[%d]: %s is listed more than once.", i, p)
		}
		seen[p] = true
	}
	for i, item := range strategy {
		if item.CapacityProvider != "" && !seen[item.CapacityProvider] {
			return ecs.Errorf(ecs.CodeInvalidParameter, "defaultCapacityProviderStrategy[%d].capacityProvider: %s is not associated with the cluster; add it to capacityProviders.", i, item.CapacityProvider)
		}
	}
	// ECS accepts a default strategy whose weights are all zero and refuses it
	// only when a service or task falls back to it; the rest is checked now.
	return capacity.ValidateStructure("defaultCapacityProviderStrategy", capacity.FromWire(strategy))
}

// wireList returns a non-nil slice, which the wire sends as [] (ECS sends
// these lists even when empty, and clients read them back).
func wireList[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
