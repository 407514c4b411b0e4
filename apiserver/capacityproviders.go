package apiserver

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Capacity provider operations: CreateCapacityProvider, DescribeCapacityProviders,
// UpdateCapacityProvider, DeleteCapacityProvider. (PutClusterCapacityProviders
// lives with the clusters.)
//
// An auto scaling group provider names an ecsd node group (the Auto Scaling
// group analogue) by its ARN or name. FARGATE and FARGATE_SPOT are built in:
// never stored, always ACTIVE, never changed or deleted. A deleted provider
// stays stored as INACTIVE so describing it by name keeps answering, as ECS
// does; its name may be used again.

const (
	// ECS's limits: 10 per page of a describe, 100 names per call.
	maxDescribeCapacityProvidersPage = 10
	maxDescribeCapacityProviders     = 100

	defaultTargetCapacity       = 100
	defaultMinimumScalingStep   = 1
	defaultMaximumScalingStep   = 10000
	defaultInstanceWarmupPeriod = 300
)

var capacityProviderNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)

// reservedProviderPrefixes may not start a provider name, in any case.
var reservedProviderPrefixes = []string{"aws", "ecs", "fargate"}

func (s *Server) registerCapacityProviders() {
	s.ops[ecs.OpCreateCapacityProvider] = op(s.createCapacityProvider)
	s.ops[ecs.OpDescribeCapacityProviders] = op(s.describeCapacityProviders)
	s.ops[ecs.OpUpdateCapacityProvider] = op(s.updateCapacityProvider)
	s.ops[ecs.OpDeleteCapacityProvider] = op(s.deleteCapacityProvider)
}

// ---- CreateCapacityProvider

func (s *Server) createCapacityProvider(c *Call, in *ecs.CreateCapacityProviderRequest) (*ecs.CreateCapacityProviderResponse, error) {
	if err := validateNewProviderName(in.Name); err != nil {
		return nil, err
	}
	if in.ManagedInstancesProvider != nil {
		return nil, ecs.Errorf(ecs.CodeUnsupportedFeature, "managedInstancesProvider: ECS Managed Instances capacity providers are not supported by ecsd; use autoScalingGroupProvider with a node group.")
	}
	if in.Cluster != "" {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "cluster: only managed instances capacity providers are created in a cluster; an Auto Scaling group capacity provider is associated with clusters through PutClusterCapacityProviders.")
	}
	if in.AutoScalingGroupProvider == nil {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "autoScalingGroupProvider is required.")
	}
	if err := validateClusterTags("tags", in.Tags); err != nil {
		return nil, err
	}
	asg := *in.AutoScalingGroupProvider
	if asg.ManagedScaling != nil {
		ms := *asg.ManagedScaling
		asg.ManagedScaling = &ms
	}
	fillProviderDefaults(&asg)
	if err := validateASGProvider("autoScalingGroupProvider", &asg); err != nil {
		return nil, err
	}
	scope := c.Scope()
	key := scope.CapacityProviderKey(in.Name)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		group, groupRev, err := s.providerNodeGroup(c, asg.AutoScalingGroupArn)
		if err != nil {
			return nil, err
		}
		cur, rev, exists := Get[resource.CapacityProvider](c, key)
		if exists && cur.Status != ecs.CapacityProviderStatusINACTIVE {
			return nil, errProviderExists(in.Name)
		}
		if other := providerOfNodeGroup(c.Snapshot(), scope, group.Name); other != "" {
			return nil, ecs.Errorf(ecs.CodeClient, "autoScalingGroupProvider.autoScalingGroupArn: node group %s already backs capacity provider %s; a node group can back only one capacity provider.", group.Name, other)
		}
		rec := &resource.CapacityProvider{
			CapacityProvider: ecs.CapacityProvider{
				CapacityProviderArn:      scope.CapacityProviderARN(in.Name),
				Name:                     in.Name,
				Status:                   ecs.CapacityProviderStatusACTIVE,
				Type:                     ecs.CapacityProviderTypeEC2AUTOSCALING,
				AutoScalingGroupProvider: &asg,
				Tags:                     in.Tags,
			},
			Scope:     scope,
			NodeGroup: group.Name,
		}
		// The provider is written together with an unchanged copy of its node
		// group under the group's revision: two creates naming the same group
		// cannot both succeed, and a create racing the same name loses on the
		// provider key.
		put := store.Create(key, resource.Encode(rec))
		if exists {
			put = store.Update(key, resource.Encode(rec), rev)
		}
		ngKey := scope.NodeGroupKey(group.Name)
		_, err = c.Commit(put, store.Update(ngKey, resource.Encode(group), groupRev))
		if errors.Is(err, store.ErrConflict) {
			if err := c.afterConflict(ngKey, attempt); err != nil {
				return nil, err
			}
			if err := c.afterConflict(key, attempt); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		view := providerView(rec, true)
		return &ecs.CreateCapacityProviderResponse{CapacityProvider: &view}, nil
	}
	return nil, ecs.Errorf(ecs.CodeUpdateInProgress, "Capacity provider %s is being changed by another request; retry.", in.Name)
}

func errProviderExists(name string) error {
	return ecs.Errorf(ecs.CodeClient, "name: the capacity provider %s already exists; change an existing capacity provider with UpdateCapacityProvider.", name)
}

// validateNewProviderName applies ECS's naming rule: letters, numbers,
// underscores and hyphens, and no reserved prefix.
func validateNewProviderName(name string) error {
	if !capacityProviderNameRE.MatchString(name) {
		return ecs.Errorf(ecs.CodeClient, "name: %q is not a valid capacity provider name: up to 255 letters (uppercase and lowercase), numbers, underscores and hyphens are allowed, and it cannot begin with aws, ecs or fargate.", name)
	}
	lower := strings.ToLower(name)
	for _, p := range reservedProviderPrefixes {
		if strings.HasPrefix(lower, p) {
			return ecs.Errorf(ecs.CodeClient, "name: %q is not a valid capacity provider name: names beginning with %q (in any case) are reserved.", name, p)
		}
	}
	return nil
}

// providerNodeGroup resolves an autoScalingGroupArn (a node group ARN or a bare
// group name) to the node group record, with its revision.
func (s *Server) providerNodeGroup(c *Call, ref string) (*resource.NodeGroup, int64, error) {
	const field = "autoScalingGroupProvider.autoScalingGroupArn"
	scope := c.Scope()
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		sc, n, err := resource.ParseNodeGroupARN(ref)
		if err != nil {
			return nil, 0, ecs.Errorf(ecs.CodeInvalidParameter, "%s: %q is not a valid Auto Scaling group ARN (arn:aws:autoscaling:<region>:<account>:autoScalingGroup:<id>:autoScalingGroupName/<name>).", field, ref)
		}
		if sc != scope {
			return nil, 0, ecs.Errorf(ecs.CodeInvalidParameter, "%s: %s is in account %s, region %s; this request acts in account %s, region %s.", field, ref, sc.Account, sc.Region, scope.Account, scope.Region)
		}
		name = n
	}
	group, rev, ok := Get[resource.NodeGroup](c, scope.NodeGroupKey(name))
	if !ok || group.Status != "" || (strings.HasPrefix(ref, "arn:") && group.ARN != ref) {
		return nil, 0, ecs.Errorf(ecs.CodeInvalidParameter, "%s: there is no node group %s in this account and region; create it first with `ecsd nodegroup create` and use the ARN it prints.", field, name)
	}
	return group, rev, nil
}

// providerOfNodeGroup is the name of the non-INACTIVE provider backed by the
// node group, or "".
func providerOfNodeGroup(snap *cache.Snapshot, scope resource.Scope, group string) string {
	found := ""
	snap.Walk(scope.KindPrefix(resource.KindCapacityProvider), func(e *cache.Entry) bool {
		p, ok := e.Obj.(*resource.CapacityProvider)
		if ok && p.Status != ecs.CapacityProviderStatusINACTIVE && p.NodeGroup == group {
			found = p.Name
			return false
		}
		return true
	})
	return found
}

// fillProviderDefaults fills what ECS fills when the request leaves it out.
func fillProviderDefaults(p *ecs.AutoScalingGroupProvider) {
	if p.ManagedScaling == nil {
		p.ManagedScaling = &ecs.ManagedScaling{}
	}
	fillScalingDefaults(p.ManagedScaling)
	if p.ManagedTerminationProtection == "" {
		p.ManagedTerminationProtection = ecs.ManagedTerminationProtectionDISABLED
	}
	if p.ManagedDraining == "" {
		p.ManagedDraining = ecs.ManagedDrainingENABLED
	}
}

func fillScalingDefaults(ms *ecs.ManagedScaling) {
	if ms.Status == "" {
		ms.Status = ecs.ManagedScalingStatusDISABLED
	}
	def := func(v **int32, d int32) {
		if *v == nil {
			*v = &d
		}
	}
	def(&ms.TargetCapacity, defaultTargetCapacity)
	def(&ms.MinimumScalingStepSize, defaultMinimumScalingStep)
	def(&ms.MaximumScalingStepSize, defaultMaximumScalingStep)
	def(&ms.InstanceWarmupPeriod, defaultInstanceWarmupPeriod)
}

// validateASGProvider checks a provider with its defaults filled in.
func validateASGProvider(path string, p *ecs.AutoScalingGroupProvider) error {
	ms := p.ManagedScaling
	inRange := func(field string, v *int32, lo, hi int32) error {
		if *v < lo || *v > hi {
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s.managedScaling.%s: must be between %d and %d; got %d.", path, field, lo, hi, *v)
		}
		return nil
	}
	for _, err := range []error{
		inRange("targetCapacity", ms.TargetCapacity, 1, 100),
		inRange("minimumScalingStepSize", ms.MinimumScalingStepSize, 1, 10000),
		inRange("maximumScalingStepSize", ms.MaximumScalingStepSize, 1, 10000),
		inRange("instanceWarmupPeriod", ms.InstanceWarmupPeriod, 0, 10000),
	} {
		if err != nil {
			return err
		}
	}
	if *ms.MinimumScalingStepSize > *ms.MaximumScalingStepSize {
		return ecs.Errorf(ecs.CodeInvalidParameter, "%s.managedScaling: minimumScalingStepSize (%d) cannot be greater than maximumScalingStepSize (%d).", path, *ms.MinimumScalingStepSize, *ms.MaximumScalingStepSize)
	}
	if p.ManagedTerminationProtection == ecs.ManagedTerminationProtectionENABLED && ms.Status != ecs.ManagedScalingStatusENABLED {
		return ecs.Errorf(ecs.CodeClient, "%s.managedTerminationProtection: managed termination protection can be ENABLED only when managed scaling is ENABLED too.", path)
	}
	return nil
}

// providerView is the wire form of a stored provider; tags are sent ([] when
// none) only when asked for.
func providerView(p *resource.CapacityProvider, withTags bool) ecs.CapacityProvider {
	v := p.CapacityProvider
	v.Tags = nil
	if withTags {
		v.Tags = wireList(slices.Clone(p.Tags))
	}
	return v
}

// fargateProviderView is how ECS shows the built-in FARGATE and FARGATE_SPOT.
func fargateProviderView(scope resource.Scope, name string, withTags bool) ecs.CapacityProvider {
	typ := ecs.CapacityProviderTypeFARGATE
	if name == resource.ProviderFargateSpot {
		typ = ecs.CapacityProviderTypeFARGATESPOT
	}
	v := ecs.CapacityProvider{
		CapacityProviderArn: scope.CapacityProviderARN(name),
		Name:                name,
		Status:              ecs.CapacityProviderStatusACTIVE,
		Type:                typ,
	}
	if withTags {
		v.Tags = []ecs.Tag{}
	}
	return v
}

// ---- DescribeCapacityProviders

func (s *Server) describeCapacityProviders(c *Call, in *ecs.DescribeCapacityProvidersRequest) (*ecs.DescribeCapacityProvidersResponse, error) {
	if len(in.CapacityProviders) > maxDescribeCapacityProviders {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "capacityProviders: at most %d capacity providers can be described at once; got %d.", maxDescribeCapacityProviders, len(in.CapacityProviders))
	}
	limit := 0
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxDescribeCapacityProvidersPage {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "maxResults: must be between 1 and %d; got %d.", maxDescribeCapacityProvidersPage, *in.MaxResults)
		}
		limit = int(*in.MaxResults)
	}
	withTags := slices.Contains(in.Include, ecs.CapacityProviderFieldTAGS)
	scope := c.Scope()
	snap := c.Snapshot()
	out := &ecs.DescribeCapacityProvidersResponse{CapacityProviders: []ecs.CapacityProvider{}, Failures: []ecs.Failure{}}

	var inCluster map[string]bool
	if in.Cluster != "" {
		cl, err := s.resolveCluster(c, in.Cluster, false)
		if err != nil {
			return nil, err
		}
		inCluster = make(map[string]bool, len(cl.CapacityProviders))
		for _, p := range cl.CapacityProviders {
			inCluster[p] = true
		}
	}

	if len(in.CapacityProviders) > 0 {
		// Named providers, in request order; pages are offsets into the list.
		start := 0
		if in.NextToken != "" {
			n, err := decodeProviderToken(in.NextToken, "i:")
			if err != nil {
				return nil, err
			}
			start, err = strconv.Atoi(n)
			if err != nil || start < 0 || start > len(in.CapacityProviders) {
				return nil, errProviderToken()
			}
		}
		for i := start; i < len(in.CapacityProviders); i++ {
			if limit > 0 && i-start == limit {
				out.NextToken = encodeProviderToken("i:" + strconv.Itoa(i))
				break
			}
			ref := in.CapacityProviders[i]
			name, ok := providerRefName(scope, ref)
			switch {
			case ok && resource.IsFargateProvider(name) && (inCluster == nil || inCluster[name]):
				out.CapacityProviders = append(out.CapacityProviders, fargateProviderView(scope, name, withTags))
				continue
			case ok && (inCluster == nil || inCluster[name]):
				if p, found := Peek[resource.CapacityProvider](snap, scope.CapacityProviderKey(name)); found {
					out.CapacityProviders = append(out.CapacityProviders, providerView(p, withTags))
					continue
				}
			}
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = scope.CapacityProviderARN(ref)
			}
			out.Failures = append(out.Failures, ecs.Failure{Arn: arn, Reason: "MISSING"})
		}
		return out, nil
	}

	// All providers: the built-in ones first, then the stored ACTIVE ones in
	// name order. The token is the last name returned, so pages stay stable
	// while providers come and go.
	if limit == 0 {
		limit = maxDescribeCapacityProvidersPage
	}
	after := ""
	if in.NextToken != "" {
		n, err := decodeProviderToken(in.NextToken, "n:")
		if err != nil {
			return nil, err
		}
		after = n
	}
	var views []ecs.CapacityProvider
	var names []string
	for _, name := range []string{resource.ProviderFargate, resource.ProviderFargateSpot} {
		if inCluster == nil || inCluster[name] {
			views = append(views, fargateProviderView(scope, name, withTags))
			names = append(names, name)
		}
	}
	snap.Walk(scope.KindPrefix(resource.KindCapacityProvider), func(e *cache.Entry) bool {
		p, ok := e.Obj.(*resource.CapacityProvider)
		if ok && p.Status != ecs.CapacityProviderStatusINACTIVE && (inCluster == nil || inCluster[p.Name]) {
			views = append(views, providerView(p, withTags))
			names = append(names, p.Name)
		}
		return true
	})
	start := 0
	if after != "" {
		start = len(names)
		for i, n := range names {
			if providerOrderLess(after, n) {
				start = i
				break
			}
		}
	}
	end := min(start+limit, len(views))
	out.CapacityProviders = append(out.CapacityProviders, views[start:end]...)
	if end < len(views) {
		out.NextToken = encodeProviderToken("n:" + names[end-1])
	}
	return out, nil
}

// providerOrderLess orders providers as describe-all lists them: FARGATE,
// FARGATE_SPOT, then by name.
func providerOrderLess(a, b string) bool {
	rank := func(n string) int {
		switch n {
		case resource.ProviderFargate:
			return 0
		case resource.ProviderFargateSpot:
			return 1
		}
		return 2
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra < rb
	}
	return a < b
}

const providerTokenPrefix = "ecsd.capacityproviders.v1:"

func encodeProviderToken(v string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(providerTokenPrefix + v))
}

func decodeProviderToken(tok, kind string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	rest, ok := strings.CutPrefix(string(b), providerTokenPrefix+kind)
	if err != nil || !ok || rest == "" {
		return "", errProviderToken()
	}
	return rest, nil
}

func errProviderToken() error {
	return ecs.Errorf(ecs.CodeInvalidParameter, "nextToken: the token is not valid; pass the nextToken of a previous DescribeCapacityProviders response with the same request.")
}

// providerRefName turns a capacity provider reference (a short name or a
// capacity-provider ARN of the caller's scope) into a name.
func providerRefName(scope resource.Scope, ref string) (string, bool) {
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		a, err := resource.ParseARN(ref)
		if err != nil || !strings.HasPrefix(ref, "arn:aws:ecs:") || a.Type != "capacity-provider" || len(a.Parts) != 1 || a.Scope != scope {
			return "", false
		}
		name = a.Parts[0]
	}
	return name, capacityProviderNameRE.MatchString(name)
}

// ---- UpdateCapacityProvider

func (s *Server) updateCapacityProvider(c *Call, in *ecs.UpdateCapacityProviderRequest) (*ecs.UpdateCapacityProviderResponse, error) {
	scope := c.Scope()
	name, ok := providerRefName(scope, in.Name)
	if !ok {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "name: %q is not a valid capacity provider name or ARN.", in.Name)
	}
	if resource.IsFargateProvider(name) {
		return nil, ecs.Errorf(ecs.CodeClient, "name: %s is a reserved capacity provider and cannot be updated.", name)
	}
	if in.ManagedInstancesProvider != nil {
		return nil, ecs.Errorf(ecs.CodeUnsupportedFeature, "managedInstancesProvider: ECS Managed Instances capacity providers are not supported by ecsd.")
	}
	if in.AutoScalingGroupProvider == nil {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "autoScalingGroupProvider is required to update an Auto Scaling group capacity provider.")
	}
	upd := in.AutoScalingGroupProvider
	rec, err := Mutate(c, scope.CapacityProviderKey(name), func(cur *resource.CapacityProvider) (*resource.CapacityProvider, error) {
		if cur == nil || cur.Status == ecs.CapacityProviderStatusINACTIVE {
			return nil, errProviderNotFound(name)
		}
		asg := cur.AutoScalingGroupProvider
		if asg == nil {
			asg = &ecs.AutoScalingGroupProvider{}
			cur.AutoScalingGroupProvider = asg
		}
		// What the update gives replaces the stored value; the rest is kept.
		if ms := upd.ManagedScaling; ms != nil {
			if asg.ManagedScaling == nil {
				asg.ManagedScaling = &ecs.ManagedScaling{}
			}
			to := asg.ManagedScaling
			if ms.Status != "" {
				to.Status = ms.Status
			}
			for _, f := range []struct {
				dst **int32
				src *int32
			}{
				{&to.TargetCapacity, ms.TargetCapacity},
				{&to.MinimumScalingStepSize, ms.MinimumScalingStepSize},
				{&to.MaximumScalingStepSize, ms.MaximumScalingStepSize},
				{&to.InstanceWarmupPeriod, ms.InstanceWarmupPeriod},
			} {
				if f.src != nil {
					v := *f.src
					*f.dst = &v
				}
			}
		}
		if upd.ManagedTerminationProtection != "" {
			asg.ManagedTerminationProtection = upd.ManagedTerminationProtection
		}
		if upd.ManagedDraining != "" {
			asg.ManagedDraining = upd.ManagedDraining
		}
		fillProviderDefaults(asg)
		if err := validateASGProvider("autoScalingGroupProvider", asg); err != nil {
			return nil, err
		}
		cur.UpdateStatus = ecs.CapacityProviderUpdateStatusUPDATECOMPLETE
		cur.UpdateStatusReason = ""
		return cur, nil
	})
	if err != nil {
		return nil, err
	}
	view := providerView(rec, true)
	return &ecs.UpdateCapacityProviderResponse{CapacityProvider: &view}, nil
}

func errProviderNotFound(name string) error {
	return ecs.Errorf(ecs.CodeClient, "The specified capacity provider %s does not exist.", name)
}

// ---- DeleteCapacityProvider

// deleteCapacityProvider makes the provider INACTIVE. While a cluster still
// lists it, ECS does not fail the call: it answers with the provider still
// ACTIVE, updateStatus DELETE_FAILED and the reason, and keeps that status.
func (s *Server) deleteCapacityProvider(c *Call, in *ecs.DeleteCapacityProviderRequest) (*ecs.DeleteCapacityProviderResponse, error) {
	scope := c.Scope()
	name, ok := providerRefName(scope, in.CapacityProvider)
	if !ok {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "capacityProvider: %q is not a valid capacity provider name or ARN.", in.CapacityProvider)
	}
	if resource.IsFargateProvider(name) {
		return nil, ecs.Errorf(ecs.CodeClient, "capacityProvider: %s is reserved and cannot be deleted; remove it from a cluster with PutClusterCapacityProviders.", name)
	}
	rec, err := Mutate(c, scope.CapacityProviderKey(name), func(cur *resource.CapacityProvider) (*resource.CapacityProvider, error) {
		if cur == nil || cur.Status == ecs.CapacityProviderStatusINACTIVE {
			return nil, errProviderNotFound(name)
		}
		if clusters := clustersUsingProvider(c.Snapshot(), scope, name); len(clusters) > 0 {
			cur.UpdateStatus = ecs.CapacityProviderUpdateStatusDELETEFAILED
			cur.UpdateStatusReason = "The capacity provider cannot be deleted because it is associated with cluster: " + strings.Join(clusters, ", ") +
				". Remove the capacity provider from the cluster and try again."
			return cur, nil
		}
		cur.Status = ecs.CapacityProviderStatusINACTIVE
		cur.UpdateStatus = ecs.CapacityProviderUpdateStatusDELETECOMPLETE
		cur.UpdateStatusReason = ""
		now := c.Now
		cur.DeletedAt = &now
		return cur, nil
	})
	if err != nil {
		return nil, err
	}
	view := providerView(rec, true)
	return &ecs.DeleteCapacityProviderResponse{CapacityProvider: &view}, nil
}

// clustersUsingProvider lists the ACTIVE clusters that have the provider
// associated, in name order.
func clustersUsingProvider(snap *cache.Snapshot, scope resource.Scope, name string) []string {
	var out []string
	snap.Walk(scope.KindPrefix(resource.KindCluster), func(e *cache.Entry) bool {
		cl, ok := e.Obj.(*resource.Cluster)
		if ok && cl.Status == clusterStatusActive && slices.Contains(cl.CapacityProviders, name) {
			out = append(out, cl.ClusterName)
		}
		return true
	})
	return out
}

// ---- Cluster associations

// clusterProviderOps checks that every provider listed for cluster exists and
// is ACTIVE (FARGATE and FARGATE_SPOT always are), and that a node-group
// provider not already associated (not in had) serves no other cluster. It
// returns conditions for the cluster's commit: each newly associated provider
// is rewritten unchanged under its revision, so a concurrent delete of it, or
// its association with another cluster, conflicts instead of interleaving.
func (s *Server) clusterProviderOps(c *Call, cluster, field string, providers, had []string) ([]store.Op, error) {
	scope := c.Scope()
	var ops []store.Op
	for i, name := range providers {
		if resource.IsFargateProvider(name) {
			continue
		}
		key := scope.CapacityProviderKey(name)
		p, rev, ok := Get[resource.CapacityProvider](c, key)
		if !ok || p.Status != ecs.CapacityProviderStatusACTIVE {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s[%d]: the capacity provider %s does not exist or is not ACTIVE; create it with CreateCapacityProvider, or use FARGATE or FARGATE_SPOT.", field, i, name)
		}
		if slices.Contains(had, name) {
			continue
		}
		for _, other := range clustersUsingProvider(c.Snapshot(), scope, name) {
			if other != cluster {
				return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s[%d]: the capacity provider %s is already associated with cluster %s; an Auto Scaling group capacity provider can serve only one cluster.", field, i, name, other)
			}
		}
		ops = append(ops, store.Update(key, resource.Encode(p), rev))
		ngOp, err := nodeGroupFollowsCluster(c, p, cluster, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		if ngOp != nil {
			ops = append(ops, *ngOp)
		}
	}
	return ops, nil
}

// nodeGroupFollowsCluster moves the node group behind a newly associated
// provider to the cluster, so that its nodes join where the provider's tasks
// are (a Terraform configuration creates the cluster after the node group).
// A group with live nodes in another cluster is refused instead: they would
// never serve this one.
func nodeGroupFollowsCluster(c *Call, p *resource.CapacityProvider, cluster, field string) (*store.Op, error) {
	key := c.Scope().NodeGroupKey(p.NodeGroup)
	ng, rev, ok := Get[resource.NodeGroup](c, key)
	if !ok || ng.Cluster == cluster {
		return nil, nil
	}
	if live := len(ng.Nodes); live > 0 {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s: the capacity provider %s uses node group %s, whose %d nodes run in cluster %s; scale the node group to 0 (ecsd nodegroup update %s --min 0 --desired 0) before associating it with cluster %s.", field, p.Name, ng.Name, live, ng.Cluster, ng.Name, cluster)
	}
	ng.Cluster = cluster
	op := store.Update(key, resource.Encode(ng), rev)
	return &op, nil
}

// afterProvidersConflict is afterConflict for the stored providers a cluster
// write conditioned on: the retry then reads what the winning writer stored.
func afterProvidersConflict(c *Call, attempt int, providers []string) error {
	for _, name := range providers {
		if resource.IsFargateProvider(name) {
			continue
		}
		if err := c.afterConflict(c.Scope().CapacityProviderKey(name), attempt); err != nil {
			return err
		}
	}
	return nil
}

// removedProviders is what in had and not in next.
func removedProviders(had, next []string) map[string]bool {
	out := map[string]bool{}
	for _, p := range had {
		if !slices.Contains(next, p) {
			out[p] = true
		}
	}
	return out
}

// providersInUse refuses to remove a provider that a service of the cluster
// (its strategy or a deployment's) or a task not yet STOPPED still uses.
func providersInUse(snap *cache.Snapshot, scope resource.Scope, cluster string, removed map[string]bool) error {
	if len(removed) == 0 {
		return nil
	}
	var err error
	inUse := func(p, by string) bool {
		err = ecs.Errorf(ecs.CodeResourceInUse, "capacityProviders: the capacity provider %s is in use by %s and cannot be removed.", p, by)
		return false
	}
	snap.Walk(scope.KindPrefix(resource.KindService, cluster), func(e *cache.Entry) bool {
		svc, ok := e.Obj.(*resource.Service)
		if !ok || svc.Status == "INACTIVE" {
			return true
		}
		strategies := [][]ecs.CapacityProviderStrategyItem{svc.CapacityProviderStrategy}
		for _, d := range svc.Rollouts {
			strategies = append(strategies, d.CapacityProviderStrategy)
		}
		for _, st := range strategies {
			for _, it := range st {
				if removed[it.CapacityProvider] {
					return inUse(it.CapacityProvider, "service "+svc.ServiceName)
				}
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	snap.Walk(scope.KindPrefix(resource.KindTask, cluster), func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if ok && t.LastStatus != "STOPPED" && removed[t.CapacityProviderName] {
			return inUse(t.CapacityProviderName, "task "+t.TaskArn)
		}
		return true
	})
	return err
}
