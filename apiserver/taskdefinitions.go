package apiserver

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Task definitions: register (validated by taskdef_validate.go), describe,
// list, list families, deregister and delete.
//
// Revisions come from a per-family counter (resource.Family) written in the
// same transaction as the revision itself, with compare-and-swap on both, so
// concurrent registrations get distinct revisions and a deleted revision's
// number is never handed out again.
//
// Deletion: DeleteTaskDefinitions moves an INACTIVE revision to
// DELETE_IN_PROGRESS and, when no stored record uses it (see
// taskDefinitionReferrer), removes it in the same transaction. A revision still
// in use stays DELETE_IN_PROGRESS; whoever stops its last user removes it.

const (
	// taskDefRegisterAttempts bounds the CAS loop on a family's counter; every
	// round has one winner, so this covers that many concurrent registrations.
	taskDefRegisterAttempts = 64
	taskDefMaxPage          = 100
	taskDefMaxDelete        = 10
)

func (s *Server) registerTaskDefinitions() {
	s.ops[ecs.OpRegisterTaskDefinition] = op(s.registerTaskDefinition)
	s.ops[ecs.OpDescribeTaskDefinition] = op(s.describeTaskDefinition)
	s.ops[ecs.OpListTaskDefinitions] = op(s.listTaskDefinitions)
	s.ops[ecs.OpListTaskDefinitionFamilies] = op(s.listTaskDefinitionFamilies)
	s.ops[ecs.OpDeregisterTaskDefinition] = op(s.deregisterTaskDefinition)
	s.ops[ecs.OpDeleteTaskDefinitions] = op(s.deleteTaskDefinitions)
}

// taskDefinitionReferrer is implemented by stored records that keep a task
// definition revision in use (running tasks, active services and deployments);
// a revision they reference is not removed by DeleteTaskDefinitions.
type taskDefinitionReferrer interface {
	ReferencesTaskDefinition(arn string) bool
}

func (s *Server) registerTaskDefinition(c *Call, in *ecs.RegisterTaskDefinitionRequest) (*ecs.RegisterTaskDefinitionResponse, error) {
	def, err := normalizeTaskDefinition(in)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	famKey := scope.FamilyKey(def.Family)
	for range taskDefRegisterAttempts {
		fam, famRev, found := Get[resource.Family](c, famKey)
		// The family counter is written in the same transaction as every
		// revision, so it is authoritative; the stored revisions are walked only
		// when it is missing (a cost that grows with the family's history).
		next := resource.Family{Name: def.Family}
		if found {
			next.LatestRevision = fam.LatestRevision
		} else {
			next.LatestRevision = taskDefLatestStored(c.Snapshot(), scope, def.Family)
		}
		next.LatestRevision++
		famOp := store.Create(famKey, resource.Encode(&next))
		if found {
			famOp = store.Update(famKey, resource.Encode(&next), famRev)
		}
		rec := resource.TaskDefinition{TaskDefinition: *def, Scope: scope, Tags: in.Tags}
		rec.Revision = next.LatestRevision
		rec.TaskDefinitionArn = scope.TaskDefinitionARN(def.Family, rec.Revision)
		rec.Status = ecs.TaskDefinitionStatusACTIVE
		rec.RegisteredAt = ecs.NewTime(c.Now)
		rec.RegisteredBy = c.Identity.Principal
		_, err := c.Commit(famOp, store.Create(scope.TaskDefinitionKey(def.Family, rec.Revision), resource.Encode(&rec)))
		if err == nil {
			return &ecs.RegisterTaskDefinitionResponse{TaskDefinition: &rec.TaskDefinition, Tags: in.Tags}, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, err
		}
		if err := taskDefCatchUp(c, famKey); err != nil {
			return nil, err
		}
	}
	return nil, tdClientErr("Too many concurrent attempts to create a new revision of the specified family.")
}

// taskDefLatestStored is the highest revision stored for family (0 if none):
// a floor for the counter should a family record ever be missing.
func taskDefLatestStored(snap *cache.Snapshot, scope resource.Scope, family string) int32 {
	var latest int32
	snap.Walk(scope.KindPrefix(resource.KindTaskDefinition, family), func(e *cache.Entry) bool {
		if d, ok := e.Obj.(*resource.TaskDefinition); ok {
			latest = max(latest, d.Revision)
		}
		return true
	})
	return latest
}

// taskDefCatchUp waits until the cache shows key as the store has it now, so a
// retry after a lost compare-and-swap reads the winner's write instead of
// spinning on a stale copy.
func taskDefCatchUp(c *Call, key string) error {
	kv, err := c.s.st.Get(c.ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, cancel := c.s.waitCtx(c.ctx)
	defer cancel()
	return c.s.cache.WaitFor(ctx, kv.Revision)
}

func (s *Server) describeTaskDefinition(c *Call, in *ecs.DescribeTaskDefinitionRequest) (*ecs.DescribeTaskDefinitionResponse, error) {
	rec, _, err := resolveTaskDefinition(c.Snapshot(), c.Scope(), in.TaskDefinition)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, tdClientErr("Unable to describe task definition.")
	}
	// The response is only marshalled, never changed: the shared cached record
	// is served as is (a copy would cost a JSON round trip per read).
	out := &ecs.DescribeTaskDefinitionResponse{TaskDefinition: &rec.TaskDefinition}
	if slices.Contains(in.Include, ecs.TaskDefinitionFieldTAGS) {
		out.Tags = taskDefNonNil(rec.Tags)
	}
	return out, nil
}

// resolveTaskDefinition finds the revision an identifier names: "family" (its
// latest ACTIVE revision), "family:revision" or a full ARN. It returns the
// shared cached record (read-only) and its key, or nil when nothing matches;
// the error is for malformed revision numbers. Operations that start tasks or
// services use it too and must refuse revisions that are not ACTIVE.
func resolveTaskDefinition(snap *cache.Snapshot, scope resource.Scope, ident string) (*resource.TaskDefinition, string, error) {
	family, rev, hasRev, ok, err := parseTaskDefIdent(scope, ident)
	if err != nil || !ok {
		return nil, "", err
	}
	if hasRev {
		key := scope.TaskDefinitionKey(family, rev)
		d, found := Peek[resource.TaskDefinition](snap, key)
		if !found {
			return nil, "", nil
		}
		return d, key, nil
	}
	var latest *resource.TaskDefinition
	var latestKey string
	snap.Walk(scope.KindPrefix(resource.KindTaskDefinition, family), func(e *cache.Entry) bool {
		if d, ok := e.Obj.(*resource.TaskDefinition); ok && d.Status == ecs.TaskDefinitionStatusACTIVE {
			latest, latestKey = d, e.Key
		}
		return true
	})
	return latest, latestKey, nil
}

// parseTaskDefIdent splits an identifier into family and revision. ok is false
// for identifiers that cannot name anything in scope (another account or
// region, another resource type, a malformed family).
func parseTaskDefIdent(scope resource.Scope, ident string) (family string, rev int32, hasRev, ok bool, err error) {
	ref := ident
	if strings.HasPrefix(ident, "arn:") {
		a, perr := resource.ParseARN(ident)
		if perr != nil || a.Type != "task-definition" || a.Scope != scope || len(a.Parts) != 1 {
			return "", 0, false, false, nil
		}
		ref = a.Resource
	}
	family, revStr, hasRev := strings.Cut(ref, ":")
	if family == "" || len(family) > taskDefMaxNameLen || !taskDefNameRE.MatchString(family) {
		return "", 0, false, false, nil
	}
	if !hasRev {
		return family, 0, false, true, nil
	}
	n, perr := strconv.ParseInt(revStr, 10, 32)
	if perr != nil || n < 1 {
		return "", 0, false, false, tdClientErr("Invalid revision number. Number: %s", revStr)
	}
	return family, int32(n), true, true, nil
}

// taskDefListToken is the opaque nextToken of both list operations: the last
// item returned (family, and revision for ListTaskDefinitions). Like ECS, a
// client keeps the other parameters the same while paging.
type taskDefListToken struct {
	Family   string `json:"f"`
	Revision int32  `json:"r,omitempty"`
}

func (t taskDefListToken) encode() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeTaskDefListToken(s string) (*taskDefListToken, error) {
	if s == "" {
		return nil, nil
	}
	var t taskDefListToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.Family == "" {
		return nil, tdParamErr("nextToken: the token is not valid; pass the nextToken value from the previous response unchanged.")
	}
	return &t, nil
}

func taskDefPageSize(max *int32) (int, error) {
	if max == nil {
		return taskDefMaxPage, nil
	}
	if *max < 1 || *max > taskDefMaxPage {
		return 0, tdParamErr("maxResults must be between 1 and %d; got %d.", taskDefMaxPage, *max)
	}
	return int(*max), nil
}

func (s *Server) listTaskDefinitions(c *Call, in *ecs.ListTaskDefinitionsRequest) (*ecs.ListTaskDefinitionsResponse, error) {
	size, err := taskDefPageSize(in.MaxResults)
	if err != nil {
		return nil, err
	}
	tok, err := decodeTaskDefListToken(in.NextToken)
	if err != nil {
		return nil, err
	}
	status := cmp.Or(in.Status, ecs.TaskDefinitionStatusACTIVE)
	desc := in.Sort == ecs.SortOrderDESC
	scope := c.Scope()
	// familyPrefix is a whole family name in ECS, not a prefix.
	prefix := scope.KindPrefix(resource.KindTaskDefinition)
	if in.FamilyPrefix != "" {
		if !taskDefNameRE.MatchString(in.FamilyPrefix) {
			return &ecs.ListTaskDefinitionsResponse{TaskDefinitionArns: []string{}}, nil
		}
		prefix = scope.KindPrefix(resource.KindTaskDefinition, in.FamilyPrefix)
	}
	var items []*resource.TaskDefinition
	c.Snapshot().Walk(prefix, func(e *cache.Entry) bool {
		if d, ok := e.Obj.(*resource.TaskDefinition); ok && d.Status == status {
			items = append(items, d)
		}
		return true
	})
	// Keys order revisions within a family but not families by name
	// ("web-a" < "web/"), so sort explicitly: family, then revision.
	order := func(a, b *resource.TaskDefinition) int {
		return cmp.Or(strings.Compare(a.Family, b.Family), cmp.Compare(a.Revision, b.Revision))
	}
	slices.SortFunc(items, order)
	if desc {
		slices.Reverse(items)
	}
	start := 0
	if tok != nil {
		last := &resource.TaskDefinition{TaskDefinition: ecs.TaskDefinition{Family: tok.Family, Revision: tok.Revision}}
		start = len(items)
		for i, d := range items {
			if o := order(d, last); (!desc && o > 0) || (desc && o < 0) {
				start = i
				break
			}
		}
	}
	out := &ecs.ListTaskDefinitionsResponse{TaskDefinitionArns: []string{}}
	end := min(start+size, len(items))
	for _, d := range items[start:end] {
		out.TaskDefinitionArns = append(out.TaskDefinitionArns, d.TaskDefinitionArn)
	}
	if end < len(items) {
		last := items[end-1]
		out.NextToken = taskDefListToken{Family: last.Family, Revision: last.Revision}.encode()
	}
	return out, nil
}

func (s *Server) listTaskDefinitionFamilies(c *Call, in *ecs.ListTaskDefinitionFamiliesRequest) (*ecs.ListTaskDefinitionFamiliesResponse, error) {
	size, err := taskDefPageSize(in.MaxResults)
	if err != nil {
		return nil, err
	}
	tok, err := decodeTaskDefListToken(in.NextToken)
	if err != nil {
		return nil, err
	}
	status := cmp.Or(in.Status, ecs.TaskDefinitionFamilyStatusACTIVE)
	// A family is listed while it has any stored revision; it is ACTIVE while
	// one of them is.
	active := map[string]bool{}
	c.Snapshot().Walk(c.Scope().KindPrefix(resource.KindTaskDefinition), func(e *cache.Entry) bool {
		if d, ok := e.Obj.(*resource.TaskDefinition); ok && strings.HasPrefix(d.Family, in.FamilyPrefix) {
			active[d.Family] = active[d.Family] || d.Status == ecs.TaskDefinitionStatusACTIVE
		}
		return true
	})
	var names []string
	for f, isActive := range active {
		switch {
		case status == ecs.TaskDefinitionFamilyStatusACTIVE && !isActive,
			status == ecs.TaskDefinitionFamilyStatusINACTIVE && isActive,
			tok != nil && f <= tok.Family:
			continue
		}
		names = append(names, f)
	}
	slices.Sort(names)
	out := &ecs.ListTaskDefinitionFamiliesResponse{Families: []string{}}
	if len(names) > size {
		names = names[:size]
		out.NextToken = taskDefListToken{Family: names[size-1]}.encode()
	}
	out.Families = append(out.Families, names...)
	return out, nil
}

func (s *Server) deregisterTaskDefinition(c *Call, in *ecs.DeregisterTaskDefinitionRequest) (*ecs.DeregisterTaskDefinitionResponse, error) {
	scope := c.Scope()
	if _, _, hasRev, ok, err := parseTaskDefIdent(scope, in.TaskDefinition); err != nil {
		return nil, err
	} else if ok && !hasRev {
		return nil, tdClientErr("taskDefinition: a revision is required; use family:revision or the full task definition ARN.")
	}
	rec, key, err := resolveTaskDefinition(c.Snapshot(), scope, in.TaskDefinition)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, tdClientErr("The specified task definition does not exist.")
	}
	if rec.Status != ecs.TaskDefinitionStatusACTIVE {
		// Deregistering again changes nothing and is not an error.
		return &ecs.DeregisterTaskDefinitionResponse{TaskDefinition: &Clone(rec).TaskDefinition}, nil
	}
	next, err := Mutate(c, key, func(cur *resource.TaskDefinition) (*resource.TaskDefinition, error) {
		if cur == nil {
			return nil, tdClientErr("The specified task definition does not exist.")
		}
		if cur.Status == ecs.TaskDefinitionStatusACTIVE {
			cur.Status = ecs.TaskDefinitionStatusINACTIVE
			cur.DeregisteredAt = ecs.NewTime(c.Now)
		}
		return cur, nil
	})
	if err != nil {
		return nil, err
	}
	return &ecs.DeregisterTaskDefinitionResponse{TaskDefinition: &next.TaskDefinition}, nil
}

func (s *Server) deleteTaskDefinitions(c *Call, in *ecs.DeleteTaskDefinitionsRequest) (*ecs.DeleteTaskDefinitionsResponse, error) {
	if len(in.TaskDefinitions) < 1 || len(in.TaskDefinitions) > taskDefMaxDelete {
		return nil, tdParamErr("taskDefinitions must have between 1 and %d items; got %d.", taskDefMaxDelete, len(in.TaskDefinitions))
	}
	scope := c.Scope()
	for _, ident := range in.TaskDefinitions {
		if _, _, hasRev, ok, err := parseTaskDefIdent(scope, ident); err != nil {
			return nil, err
		} else if ok && !hasRev {
			return nil, tdClientErr("taskDefinitions: %q has no revision; use family:revision or the full task definition ARN.", ident)
		}
	}
	for range maxCASAttempts {
		out, ops := taskDefDeletePlan(c, in.TaskDefinitions)
		if len(ops) == 0 {
			return out, nil
		}
		_, err := c.Commit(ops...)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, err
		}
	}
	return nil, ecs.Errorf(ecs.CodeUpdateInProgress, "The task definitions are being changed by another request; retry.")
}

// taskDefDeletePlan decides, from one snapshot, what DeleteTaskDefinitions
// answers and writes: INACTIVE revisions become DELETE_IN_PROGRESS and are
// removed at once unless something still uses them.
func taskDefDeletePlan(c *Call, idents []string) (*ecs.DeleteTaskDefinitionsResponse, []store.Op) {
	snap := c.Snapshot()
	scope := c.Scope()
	out := &ecs.DeleteTaskDefinitionsResponse{TaskDefinitions: []ecs.TaskDefinition{}, Failures: []ecs.Failure{}}
	var ops []store.Op
	var pending []*resource.TaskDefinition
	var pendingKeys []string
	done := map[string]bool{}
	for _, ident := range idents {
		rec, key, _ := resolveTaskDefinition(snap, scope, ident)
		switch {
		case rec == nil:
			out.Failures = append(out.Failures, ecs.Failure{Arn: ident, Reason: "The specified task definition does not exist."})
			continue
		case done[key]:
			continue
		case rec.Status == ecs.TaskDefinitionStatusACTIVE:
			out.Failures = append(out.Failures, ecs.Failure{Arn: rec.TaskDefinitionArn, Reason: "The specified task definition is still in ACTIVE status. Please deregister the target and try again."})
			continue
		}
		done[key] = true
		d := Clone(rec)
		if d.Status == ecs.TaskDefinitionStatusINACTIVE {
			d.Status = ecs.TaskDefinitionStatusDELETEINPROGRESS
			d.DeleteRequestedAt = ecs.NewTime(c.Now)
			pending = append(pending, d)
			pendingKeys = append(pendingKeys, key)
		}
		out.TaskDefinitions = append(out.TaskDefinitions, d.TaskDefinition)
	}
	inUse := taskDefsInUse(snap, scope, pending)
	for i, d := range pending {
		e, _ := snap.Get(pendingKeys[i])
		if inUse[d.TaskDefinitionArn] {
			ops = append(ops, store.Update(pendingKeys[i], resource.Encode(d), e.Rev))
		} else {
			ops = append(ops, store.Delete(pendingKeys[i], e.Rev))
		}
	}
	return out, ops
}

// taskDefsInUse reports which of defs some stored record of the scope still
// references.
func taskDefsInUse(snap *cache.Snapshot, scope resource.Scope, defs []*resource.TaskDefinition) map[string]bool {
	used := map[string]bool{}
	if len(defs) == 0 {
		return used
	}
	snap.Walk(scope.Prefix(), func(e *cache.Entry) bool {
		r, ok := e.Obj.(taskDefinitionReferrer)
		if !ok {
			return true
		}
		for _, d := range defs {
			if r.ReferencesTaskDefinition(d.TaskDefinitionArn) {
				used[d.TaskDefinitionArn] = true
			}
		}
		return true
	})
	return used
}

// taskDefRequiredAttributes derives the container-instance capabilities the
// definition needs, as ECS reports them in requiresAttributes (a faithful
// subset: the features ecsd's agent can tell apart). Always a list, maybe empty.
func taskDefRequiredAttributes(td *ecs.TaskDefinition) []ecs.Attribute {
	const (
		capPrefix = "com.amazonaws.ecs.capability."
		ecsCap    = "ecs.capability."
	)
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		if lc := c.LogConfiguration; lc != nil {
			add(capPrefix + "logging-driver." + string(lc.LogDriver))
			if lc.LogDriver == ecs.LogDriverAwslogs {
				add(capPrefix + "docker-remote-api.1.19")
				if td.ExecutionRoleArn != "" {
					add(ecsCap + "execution-role-awslogs")
				}
			}
			add(capPrefix + "docker-remote-api.1.18")
			for _, s := range lc.SecretOptions {
				add(ecsCap + "secrets." + taskDefSecretStore(s.ValueFrom) + ".bootstrap.log-driver")
			}
		}
		if c.HealthCheck != nil {
			add(capPrefix + "docker-remote-api.1.24")
			add(ecsCap + "container-health-check")
		}
		if taskDefIsECRImage(c.Image) {
			add(capPrefix + "ecr-auth")
			if td.ExecutionRoleArn != "" {
				add(ecsCap + "execution-role-ecr-pull")
			}
		}
		if c.MemoryReservation != nil {
			add(capPrefix + "docker-remote-api.1.21")
		}
		if len(c.DockerLabels) > 0 || len(c.Ulimits) > 0 {
			add(capPrefix + "docker-remote-api.1.18")
		}
		if len(c.DependsOn) > 0 || c.StartTimeout != nil || c.StopTimeout != nil {
			add(ecsCap + "container-ordering")
		}
		for _, s := range c.Secrets {
			add(ecsCap + "secrets." + taskDefSecretStore(s.ValueFrom) + ".environment-variables")
		}
		if len(c.EnvironmentFiles) > 0 {
			add(ecsCap + "env-files.s3")
		}
		if c.RepositoryCredentials != nil {
			add(capPrefix + "private-registry-authentication.secretsmanager")
		}
		if f := c.FirelensConfiguration; f != nil {
			add(ecsCap + "firelens." + string(f.Type))
		}
		if lp := c.LinuxParameters; lp != nil && lp.InitProcessEnabled != nil && *lp.InitProcessEnabled {
			add(capPrefix + "docker-remote-api.1.25")
		}
	}
	if td.TaskRoleArn != "" {
		add(capPrefix + "task-iam-role")
		if td.NetworkMode == ecs.NetworkModeHost {
			add(capPrefix + "task-iam-role-network-host")
		}
	}
	for _, v := range td.Volumes {
		if v.DockerVolumeConfiguration != nil {
			add(capPrefix + "docker-remote-api.1.25")
		}
		if v.EfsVolumeConfiguration != nil {
			add(ecsCap + "efsAuth")
		}
	}
	if td.IpcMode != "" || td.PidMode != "" {
		add(ecsCap + "pid-ipc-namespace-sharing")
	}
	if td.ProxyConfiguration != nil {
		add(ecsCap + "aws-appmesh")
	}
	if td.NetworkMode == ecs.NetworkModeAwsvpc {
		add(ecsCap + "task-eni")
	}
	out := make([]ecs.Attribute, 0, len(names))
	for _, n := range names {
		out = append(out, ecs.Attribute{Name: n})
	}
	return out
}

// taskDefSecretStore names the secret store a valueFrom points at: Secrets
// Manager ARNs are "asm", everything else (SSM names and ARNs) is "ssm".
func taskDefSecretStore(valueFrom string) string {
	if strings.HasPrefix(valueFrom, "arn:") && strings.Contains(valueFrom, ":secretsmanager:") {
		return "asm"
	}
	return "ssm"
}

func taskDefIsECRImage(image string) bool {
	host, _, ok := strings.Cut(image, "/")
	return ok && strings.Contains(host, ".dkr.ecr.") && strings.Contains(host, ".amazonaws.com")
}
