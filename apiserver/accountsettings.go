package apiserver

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
)

// Account settings: per principal (IAM user or role) or account-wide, per region.
// The root user's setting IS the account default (PutAccountSettingDefault and
// PutAccountSetting for the root ARN write the same record), and a principal's
// effective value is its own setting, else the account default, else ECS's.

// settingDefaultKey stands for the root user / account default in store keys.
const settingDefaultKey = "__default__"

// maxSettingsPage is ECS's page size limit (and default) for ListAccountSettings.
const maxSettingsPage = 10

// settingSpec is what ECS accepts for one setting and what it starts as.
type settingSpec struct {
	values []string
	// def is the value in force when neither the principal nor the account set one.
	def string
	// managed settings are AWS's to change (type aws_managed): never writable.
	managed bool
	// rootOnly settings can be set only for the root user (the account default).
	rootOnly bool
	// refuse maps a value to the message ECS answers for it although it is
	// well-formed (long ARNs can no longer be turned off).
	refuse map[string]string
}

var (
	enabledDisabled = []string{"enabled", "disabled"}
	noLongARNOptOut = map[string]string{"disabled": "You can no longer disable Long Arn settings."}
)

var settingSpecs = map[ecs.SettingName]settingSpec{
	ecs.SettingNameServiceLongArnFormat:            {values: enabledDisabled, def: "enabled", refuse: noLongARNOptOut},
	ecs.SettingNameTaskLongArnFormat:               {values: enabledDisabled, def: "enabled", refuse: noLongARNOptOut},
	ecs.SettingNameContainerInstanceLongArnFormat:  {values: enabledDisabled, def: "enabled", refuse: noLongARNOptOut},
	ecs.SettingNameAwsvpcTrunking:                  {values: enabledDisabled, def: "disabled"},
	ecs.SettingNameContainerInsights:               {values: []string{"enabled", "disabled", "enhanced"}, def: "disabled"},
	ecs.SettingNameFargateFIPSMode:                 {values: enabledDisabled, def: "disabled"},
	ecs.SettingNameTagResourceAuthorization:        {values: []string{"on", "off"}, def: "on"},
	ecs.SettingNameFargateTaskRetirementWaitPeriod: {values: []string{"0", "7", "14"}, def: "7", rootOnly: true},
	ecs.SettingNameGuardDutyActivate:               {values: []string{"on", "off"}, def: "off", managed: true},
	ecs.SettingNameDefaultLogDriverMode:            {values: []string{"blocking", "non-blocking"}, def: "non-blocking"},
	ecs.SettingNameFargateEventWindows:             {values: enabledDisabled, def: "disabled"},
}

func (s *Server) registerAccountSettings() {
	s.ops[ecs.OpPutAccountSetting] = op(s.putAccountSetting)
	s.ops[ecs.OpPutAccountSettingDefault] = op(s.putAccountSettingDefault)
	s.ops[ecs.OpDeleteAccountSetting] = op(s.deleteAccountSetting)
	s.ops[ecs.OpListAccountSettings] = op(s.listAccountSettings)
}

func (s *Server) putAccountSetting(c *Call, in *ecs.PutAccountSettingRequest) (*ecs.PutAccountSettingResponse, error) {
	principal, err := settingPrincipal(c, in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	set, err := writeSetting(c, in.Name, in.Value, principal)
	if err != nil {
		return nil, err
	}
	return &ecs.PutAccountSettingResponse{Setting: set}, nil
}

func (s *Server) putAccountSettingDefault(c *Call, in *ecs.PutAccountSettingDefaultRequest) (*ecs.PutAccountSettingDefaultResponse, error) {
	set, err := writeSetting(c, in.Name, in.Value, rootPrincipal(c))
	if err != nil {
		return nil, err
	}
	return &ecs.PutAccountSettingDefaultResponse{Setting: set}, nil
}

// writeSetting checks value against ECS's rules for name and stores it for
// principal (the root ARN writes the account default).
func writeSetting(c *Call, name ecs.SettingName, value, principal string) (*ecs.Setting, error) {
	spec := settingSpecs[name]
	if spec.managed {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "name: %s is managed by AWS and cannot be changed.", name)
	}
	if !slices.Contains(spec.values, value) {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "value: %q is not a valid value for %s; valid values are %s.", value, name, strings.Join(spec.values, ", "))
	}
	if msg, ok := spec.refuse[value]; ok {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s", msg)
	}
	root := isRootPrincipal(principal)
	if spec.rootOnly && !root {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "principalArn: %s can only be set for the root user (the account default), not for %s.", name, principal)
	}
	rec := &resource.AccountSetting{Setting: ecs.Setting{Name: name, Value: value, Type: ecs.SettingTypeUser}, Scope: c.Scope()}
	if !root {
		rec.PrincipalArn = principal
	}
	key := settingKey(c.Scope(), principal, name)
	if _, err := Mutate(c, key, func(*resource.AccountSetting) (*resource.AccountSetting, error) { return rec, nil }); err != nil {
		return nil, err
	}
	return &ecs.Setting{Name: name, Value: value, PrincipalArn: principal, Type: ecs.SettingTypeUser}, nil
}

func (s *Server) deleteAccountSetting(c *Call, in *ecs.DeleteAccountSettingRequest) (*ecs.DeleteAccountSettingResponse, error) {
	principal, err := settingPrincipal(c, in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	if settingSpecs[in.Name].managed {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "name: %s is managed by AWS and cannot be changed.", in.Name)
	}
	var deleted *resource.AccountSetting
	_, err = Mutate(c, settingKey(c.Scope(), principal, in.Name), func(cur *resource.AccountSetting) (*resource.AccountSetting, error) {
		deleted = cur
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	// Deleting what was never set is not an error; the answer then names the
	// value now in force for the principal.
	out := &ecs.Setting{Name: in.Name, PrincipalArn: principal, Type: ecs.SettingTypeUser}
	if deleted != nil {
		out.Value = deleted.Value
	} else {
		out.Value = effectiveSetting(c, principal, in.Name).Value
	}
	return &ecs.DeleteAccountSettingResponse{Setting: out}, nil
}

func (s *Server) listAccountSettings(c *Call, in *ecs.ListAccountSettingsRequest) (*ecs.ListAccountSettingsResponse, error) {
	if in.Value != "" && in.Name == "" {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "value: filtering by value requires name.")
	}
	limit := int(in.MaxResults)
	if limit == 0 {
		limit = maxSettingsPage
	}
	if limit < 1 || limit > maxSettingsPage {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "maxResults must be between 1 and %d; got %d.", maxSettingsPage, in.MaxResults)
	}
	principal, err := settingPrincipal(c, in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	after := ""
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err != nil || !ecs.SettingName(b).Valid() {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "nextToken: %q is not a token this operation returned.", in.NextToken)
		}
		after = string(b)
	}
	var all []ecs.Setting
	for _, name := range sortedSettingNames() {
		if in.Name != "" && name != in.Name {
			continue
		}
		var set *ecs.Setting
		if in.EffectiveSettings {
			set = effectiveSetting(c, principal, name)
		} else if rec, ok := Peek[resource.AccountSetting](c.Snapshot(), settingKey(c.Scope(), principal, name)); ok {
			set = &ecs.Setting{Name: name, Value: rec.Value, PrincipalArn: principal, Type: ecs.SettingTypeUser}
		}
		if set == nil || (in.Value != "" && set.Value != in.Value) {
			continue
		}
		all = append(all, *set)
	}
	start := 0
	if after != "" {
		start = len(all)
		for i, st := range all {
			if string(st.Name) > after {
				start = i
				break
			}
		}
	}
	page := all[start:]
	out := &ecs.ListAccountSettingsResponse{Settings: []ecs.Setting{}}
	if len(page) > limit {
		page = page[:limit]
		out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(page[len(page)-1].Name))
	}
	out.Settings = append(out.Settings, page...)
	return out, nil
}

// accountSetting is the value of setting name in force for the caller.
func (s *Server) accountSetting(c *Call, name ecs.SettingName) string {
	return effectiveSetting(c, callerPrincipal(c), name).Value
}

// longARNFormat reports whether resources of kind ("task", "service",
// "containerInstance") created by the caller get the long ARN format
// (arn:...:task/<cluster>/<id>) rather than the short one (arn:...:task/<id>).
func (s *Server) longARNFormat(c *Call, kind string) bool {
	var name ecs.SettingName
	switch kind {
	case "task":
		name = ecs.SettingNameTaskLongArnFormat
	case "service":
		name = ecs.SettingNameServiceLongArnFormat
	case "containerInstance", "container-instance":
		name = ecs.SettingNameContainerInstanceLongArnFormat
	default:
		return true
	}
	return s.accountSetting(c, name) != "disabled"
}

// effectiveSetting resolves name for principal: its own setting, else the
// account default, else ECS's default. principalArn says whose setting is in
// force (the root ARN for account-wide values).
func effectiveSetting(c *Call, principal string, name ecs.SettingName) *ecs.Setting {
	spec := settingSpecs[name]
	typ := ecs.SettingTypeUser
	if spec.managed {
		typ = ecs.SettingTypeAwsManaged
	}
	snap := c.Snapshot()
	root := rootPrincipal(c)
	if !isRootPrincipal(principal) {
		if rec, ok := Peek[resource.AccountSetting](snap, settingKey(c.Scope(), principal, name)); ok {
			return &ecs.Setting{Name: name, Value: rec.Value, PrincipalArn: principal, Type: typ}
		}
	}
	if rec, ok := Peek[resource.AccountSetting](snap, settingKey(c.Scope(), root, name)); ok {
		return &ecs.Setting{Name: name, Value: rec.Value, PrincipalArn: root, Type: typ}
	}
	return &ecs.Setting{Name: name, Value: spec.def, PrincipalArn: root, Type: typ}
}

func sortedSettingNames() []ecs.SettingName {
	var names []ecs.SettingName
	for _, n := range ecs.SettingName("").Values() {
		names = append(names, ecs.SettingName(n))
	}
	slices.Sort(names)
	return names
}

// settingKey is where principal's setting lives; the root user's is the
// account default. Principal ARNs contain slashes, so they are escaped.
func settingKey(sc resource.Scope, principal string, name ecs.SettingName) string {
	p := settingDefaultKey
	if !isRootPrincipal(principal) {
		p = url.PathEscape(principal)
	}
	return sc.Key(resource.KindAccountSetting, p, string(name))
}

// iamPrincipalARN matches the principals account settings can be set for.
var iamPrincipalARN = regexp.MustCompile(`^arn:(aws[a-z-]*):iam::(\d{12}):(root|user/[\w+=,.@/-]+|role/[\w+=,.@/-]+)$`)

// settingPrincipal validates a request's principalArn (the caller when empty).
// Only the root user may act for other principals.
func settingPrincipal(c *Call, arn string) (string, error) {
	caller := callerPrincipal(c)
	if arn == "" {
		return caller, nil
	}
	m := iamPrincipalARN.FindStringSubmatch(arn)
	if m == nil {
		return "", ecs.Errorf(ecs.CodeInvalidParameter, "principalArn: %q is not the ARN of an IAM user, an IAM role or the root user.", arn)
	}
	if m[2] != c.Identity.Account {
		return "", ecs.Errorf(ecs.CodeInvalidParameter, "principalArn: %s belongs to account %s, not to the caller's account %s.", arn, m[2], c.Identity.Account)
	}
	if arn != caller && !isRootPrincipal(caller) {
		return "", ecs.Errorf(ecs.CodeAccessDenied, "principalArn: %s may change only its own account settings; %s requires the root user.", caller, arn)
	}
	return arn, nil
}

// callerPrincipal is the caller as account settings see it: a role session acts
// as its role; federated users and account keys as the root user.
func callerPrincipal(c *Call) string {
	p := c.Identity.Principal
	partition := arnPartition(p)
	if rest, ok := strings.CutPrefix(p, "arn:"+partition+":sts::"+c.Identity.Account+":assumed-role/"); ok {
		if role, _, ok := strings.Cut(rest, "/"); ok && role != "" {
			return "arn:" + partition + ":iam::" + c.Identity.Account + ":role/" + role
		}
	}
	if m := iamPrincipalARN.FindStringSubmatch(p); m != nil && m[2] == c.Identity.Account {
		return p
	}
	return rootPrincipal(c)
}

func rootPrincipal(c *Call) string {
	return "arn:" + arnPartition(c.Identity.Principal) + ":iam::" + c.Identity.Account + ":root"
}

func isRootPrincipal(arn string) bool { return strings.HasSuffix(arn, ":root") }

func arnPartition(arn string) string {
	if rest, ok := strings.CutPrefix(arn, "arn:"); ok {
		if p, _, ok := strings.Cut(rest, ":"); ok && strings.HasPrefix(p, "aws") {
			return p
		}
	}
	return "aws"
}
