package apiserver

// Account settings through the official SDK against a real API server on a
// loopback port. The test authenticator maps access keys to principals, so
// non-root callers (an IAM role, a role session, a user) can be exercised —
// dev-mode auth makes every caller the root user.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store/memstore"
)

const (
	settingsAccount = "123456789012"
	settingsRoot    = "arn:aws:iam::123456789012:root"
	settingsRole    = "arn:aws:iam::123456789012:role/deployer"
	settingsUser    = "arn:aws:iam::123456789012:user/ops/alice"
)

// settingsAuth authenticates by access key id alone: the key names the principal.
type settingsAuth map[string]string

func (a settingsAuth) Authenticate(r *http.Request, _ []byte) (auth.Identity, error) {
	h := r.Header.Get("Authorization")
	i := strings.Index(h, "Credential=")
	if i < 0 {
		return auth.Identity{}, ecs.Errorf(ecs.CodeMissingAuthenticationToken, "no credential")
	}
	key, _, _ := strings.Cut(h[i+len("Credential="):], "/")
	p, ok := a[key]
	if !ok {
		return auth.Identity{}, ecs.Errorf(ecs.CodeUnrecognizedClient, "unknown key %s", key)
	}
	return auth.Identity{AccessKeyID: key, Account: settingsAccount, Region: "us-east-1", Service: "ecs", Principal: p}, nil
}

type settingsHarness struct {
	srv  *Server
	url  string
	root *awsecs.Client
	role *awsecs.Client // arn:...:role/deployer
	sess *awsecs.Client // a session of role/deployer (sts assumed-role)
	user *awsecs.Client // arn:...:user/ops/alice
}

func startSettingsHarness(t *testing.T) *settingsHarness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := memstore.New()
	c := cache.New(st, resource.Root, resource.Decode, log)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done; st.Close() })
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("cache not ready")
	}
	authn := settingsAuth{
		"ROOT": settingsRoot,
		"ROLE": settingsRole,
		"SESS": "arn:aws:sts::123456789012:assumed-role/deployer/ci-run-7",
		"USER": settingsUser,
	}
	srv, err := New(Config{Logger: log}, st, c, authn)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	client := func(key string) *awsecs.Client {
		return awsecs.New(awsecs.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(hs.URL), HTTPClient: hs.Client(),
			Credentials: credentials.NewStaticCredentialsProvider(key, "secret", ""), RetryMaxAttempts: 1,
		})
	}
	return &settingsHarness{srv: srv, url: hs.URL, root: client("ROOT"), role: client("ROLE"), sess: client("SESS"), user: client("USER")}
}

// call is a Call as the principal would make it (for the exported helpers).
func (h *settingsHarness) call(principal string) *Call {
	return &Call{ctx: context.Background(), Op: "test", s: h.srv, Now: time.Now().UTC(),
		Identity: auth.Identity{Account: settingsAccount, Region: "us-east-1", Principal: principal}}
}

func settingsWant(t *testing.T, err error, code string, parts ...string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want %s, got %s: %s", code, ae.ErrorCode(), ae.ErrorMessage())
	}
	for _, p := range parts {
		if !strings.Contains(ae.ErrorMessage(), p) {
			t.Fatalf("%s message %q does not mention %q", code, ae.ErrorMessage(), p)
		}
	}
}

// settingsAll lists every page and returns name -> "value principal type".
func settingsAll(t *testing.T, cl *awsecs.Client, in awsecs.ListAccountSettingsInput) map[string]string {
	t.Helper()
	out := map[string]string{}
	p := awsecs.NewListAccountSettingsPaginator(cl, &in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Settings {
			out[string(s.Name)] = aws.ToString(s.Value) + " " + aws.ToString(s.PrincipalArn) + " " + string(s.Type)
		}
	}
	return out
}

func TestAccountSettingDefaults(t *testing.T) {
	h := startSettingsHarness(t)
	ctx := context.Background()

	// Nothing set: the explicit list is empty (but present).
	out, err := h.root.ListAccountSettings(ctx, &awsecs.ListAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if out.Settings == nil || len(out.Settings) != 0 || out.NextToken != nil {
		t.Fatalf("explicit settings of a fresh account: %+v", out)
	}

	// Effective settings: ECS's defaults, ten to a page.
	first, err := h.root.ListAccountSettings(ctx, &awsecs.ListAccountSettingsInput{EffectiveSettings: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Settings) != 10 || first.NextToken == nil {
		t.Fatalf("first page: %d settings, token %v", len(first.Settings), first.NextToken)
	}
	want := map[string]string{
		"serviceLongArnFormat":            "enabled " + settingsRoot + " user",
		"taskLongArnFormat":               "enabled " + settingsRoot + " user",
		"containerInstanceLongArnFormat":  "enabled " + settingsRoot + " user",
		"awsvpcTrunking":                  "disabled " + settingsRoot + " user",
		"containerInsights":               "disabled " + settingsRoot + " user",
		"fargateFIPSMode":                 "disabled " + settingsRoot + " user",
		"tagResourceAuthorization":        "on " + settingsRoot + " user",
		"fargateTaskRetirementWaitPeriod": "7 " + settingsRoot + " user",
		"guardDutyActivate":               "off " + settingsRoot + " aws_managed",
		"defaultLogDriverMode":            "non-blocking " + settingsRoot + " user",
		"fargateEventWindows":             "disabled " + settingsRoot + " user",
	}
	got := settingsAll(t, h.root, awsecs.ListAccountSettingsInput{EffectiveSettings: true})
	if len(got) != len(want) {
		t.Fatalf("effective settings: %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	// Small pages walk the same list.
	if small := settingsAll(t, h.root, awsecs.ListAccountSettingsInput{EffectiveSettings: true, MaxResults: 3}); len(small) != len(want) {
		t.Fatalf("pages of 3: %v", small)
	}
	// A role with nothing of its own sees the account's values.
	if v := settingsAll(t, h.role, awsecs.ListAccountSettingsInput{EffectiveSettings: true, Name: types.SettingNameContainerInsights}); v["containerInsights"] != "disabled "+settingsRoot+" user" {
		t.Fatalf("role's effective containerInsights: %v", v)
	}

	c := h.call(settingsRoot)
	for _, kind := range []string{"task", "service", "containerInstance"} {
		if !h.srv.longARNFormat(c, kind) {
			t.Errorf("longARNFormat(%s) = false on a fresh account", kind)
		}
	}
	if v := h.srv.accountSetting(c, ecs.SettingNameFargateTaskRetirementWaitPeriod); v != "7" {
		t.Errorf("fargateTaskRetirementWaitPeriod = %q", v)
	}
}

func TestAccountSettingPrecedence(t *testing.T) {
	h := startSettingsHarness(t)
	ctx := context.Background()

	// The account default is the root user's setting.
	d, err := h.role.PutAccountSettingDefault(ctx, &awsecs.PutAccountSettingDefaultInput{Name: types.SettingNameContainerInsights, Value: aws.String("enhanced")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.Setting.PrincipalArn) != settingsRoot || aws.ToString(d.Setting.Value) != "enhanced" || d.Setting.Type != types.SettingTypeUser {
		t.Fatalf("PutAccountSettingDefault: %+v", d.Setting)
	}
	if v := settingsAll(t, h.root, awsecs.ListAccountSettingsInput{}); v["containerInsights"] != "enhanced "+settingsRoot+" user" || len(v) != 1 {
		t.Fatalf("root's explicit settings: %v", v)
	}

	// The role's own setting wins for the role only.
	p, err := h.role.PutAccountSetting(ctx, &awsecs.PutAccountSettingInput{Name: types.SettingNameContainerInsights, Value: aws.String("disabled")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(p.Setting.PrincipalArn) != settingsRole {
		t.Fatalf("PutAccountSetting without principalArn acts for the caller: %+v", p.Setting)
	}
	if v := h.srv.accountSetting(h.call(settingsRole), ecs.SettingNameContainerInsights); v != "disabled" {
		t.Fatalf("role's effective value %q", v)
	}
	// A session of the role is the role.
	if v := settingsAll(t, h.sess, awsecs.ListAccountSettingsInput{EffectiveSettings: true, Name: types.SettingNameContainerInsights}); v["containerInsights"] != "disabled "+settingsRole+" user" {
		t.Fatalf("session's effective value: %v", v)
	}
	if v := h.srv.accountSetting(h.call(settingsUser), ecs.SettingNameContainerInsights); v != "enhanced" {
		t.Fatalf("user's effective value %q (the account default)", v)
	}
	if v := h.srv.accountSetting(h.call(settingsRoot), ecs.SettingNameContainerInsights); v != "enhanced" {
		t.Fatalf("root's effective value %q", v)
	}

	// The root user sets for others; filters by name and value.
	if _, err := h.root.PutAccountSetting(ctx, &awsecs.PutAccountSettingInput{Name: types.SettingNameAwsvpcTrunking, Value: aws.String("enabled"), PrincipalArn: aws.String(settingsUser)}); err != nil {
		t.Fatal(err)
	}
	if v := settingsAll(t, h.root, awsecs.ListAccountSettingsInput{PrincipalArn: aws.String(settingsUser)}); len(v) != 1 || v["awsvpcTrunking"] != "enabled "+settingsUser+" user" {
		t.Fatalf("user's explicit settings: %v", v)
	}
	if v := settingsAll(t, h.user, awsecs.ListAccountSettingsInput{EffectiveSettings: true, Name: types.SettingNameAwsvpcTrunking, Value: aws.String("disabled")}); len(v) != 0 {
		t.Fatalf("value filter: %v", v)
	}
	if v := settingsAll(t, h.user, awsecs.ListAccountSettingsInput{EffectiveSettings: true, Name: types.SettingNameAwsvpcTrunking, Value: aws.String("enabled")}); len(v) != 1 {
		t.Fatalf("value filter: %v", v)
	}

	// Deleting the role's setting returns it and falls back to the account default.
	del, err := h.role.DeleteAccountSetting(ctx, &awsecs.DeleteAccountSettingInput{Name: types.SettingNameContainerInsights})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(del.Setting.Value) != "disabled" || aws.ToString(del.Setting.PrincipalArn) != settingsRole {
		t.Fatalf("deleted: %+v", del.Setting)
	}
	if v := h.srv.accountSetting(h.call(settingsRole), ecs.SettingNameContainerInsights); v != "enhanced" {
		t.Fatalf("after delete the role sees %q", v)
	}
	// Deleting the root's setting drops the account default back to ECS's.
	if _, err := h.root.DeleteAccountSetting(ctx, &awsecs.DeleteAccountSettingInput{Name: types.SettingNameContainerInsights, PrincipalArn: aws.String(settingsRoot)}); err != nil {
		t.Fatal(err)
	}
	if v := h.srv.accountSetting(h.call(settingsRole), ecs.SettingNameContainerInsights); v != "disabled" {
		t.Fatalf("after deleting the default the role sees %q", v)
	}
	// Deleting what is not set answers with the value in force.
	again, err := h.role.DeleteAccountSetting(ctx, &awsecs.DeleteAccountSettingInput{Name: types.SettingNameContainerInsights})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(again.Setting.Value) != "disabled" {
		t.Fatalf("delete of an unset setting: %+v", again.Setting)
	}

	// Root-only settings go through the default.
	if _, err := h.role.PutAccountSettingDefault(ctx, &awsecs.PutAccountSettingDefaultInput{Name: types.SettingNameFargateTaskRetirementWaitPeriod, Value: aws.String("14")}); err != nil {
		t.Fatal(err)
	}
	if v := h.srv.accountSetting(h.call(settingsUser), ecs.SettingNameFargateTaskRetirementWaitPeriod); v != "14" {
		t.Fatalf("fargateTaskRetirementWaitPeriod %q", v)
	}
}

func TestAccountSettingLongARNFormat(t *testing.T) {
	h := startSettingsHarness(t)
	ctx := context.Background()
	// ECS no longer lets accounts opt out of long ARNs; Terraform's destroy of
	// aws_ecs_account_setting_default relies on this exact message.
	for _, name := range []types.SettingName{types.SettingNameServiceLongArnFormat, types.SettingNameTaskLongArnFormat, types.SettingNameContainerInstanceLongArnFormat} {
		_, err := h.root.PutAccountSettingDefault(ctx, &awsecs.PutAccountSettingDefaultInput{Name: name, Value: aws.String("disabled")})
		settingsWant(t, err, ecs.CodeInvalidParameter, "You can no longer disable")
		_, err = h.role.PutAccountSetting(ctx, &awsecs.PutAccountSettingInput{Name: name, Value: aws.String("disabled")})
		settingsWant(t, err, ecs.CodeInvalidParameter, "You can no longer disable")
		if _, err := h.role.PutAccountSetting(ctx, &awsecs.PutAccountSettingInput{Name: name, Value: aws.String("enabled")}); err != nil {
			t.Fatal(err)
		}
	}
	// A stored opt-out (an account from before the change) is still honoured.
	c := h.call(settingsRole)
	rec := &resource.AccountSetting{Setting: ecs.Setting{Name: ecs.SettingNameTaskLongArnFormat, Value: "disabled", PrincipalArn: settingsRole, Type: ecs.SettingTypeUser}, Scope: c.Scope()}
	if _, err := Mutate(c, settingKey(c.Scope(), settingsRole, ecs.SettingNameTaskLongArnFormat), func(*resource.AccountSetting) (*resource.AccountSetting, error) { return rec, nil }); err != nil {
		t.Fatal(err)
	}
	if h.srv.longARNFormat(c, "task") || !h.srv.longARNFormat(c, "service") || !h.srv.longARNFormat(h.call(settingsRoot), "task") {
		t.Fatal("longARNFormat does not follow the stored settings")
	}
}

func TestAccountSettingErrors(t *testing.T) {
	h := startSettingsHarness(t)
	ctx := context.Background()
	put := func(cl *awsecs.Client, name types.SettingName, value, principal string) error {
		in := &awsecs.PutAccountSettingInput{Name: name, Value: aws.String(value)}
		if principal != "" {
			in.PrincipalArn = aws.String(principal)
		}
		_, err := cl.PutAccountSetting(ctx, in)
		return err
	}
	cases := []struct {
		name  string
		err   error
		code  string
		parts []string
	}{
		{"unknown name", put(h.root, "dualStackIPv7", "enabled", ""), ecs.CodeInvalidParameter, []string{"name"}},
		{"value case matters", put(h.root, types.SettingNameAwsvpcTrunking, "ENABLED", ""), ecs.CodeInvalidParameter, []string{"value", "awsvpcTrunking"}},
		{"on is not enabled", put(h.root, types.SettingNameContainerInsights, "on", ""), ecs.CodeInvalidParameter, []string{"value"}},
		{"wait period", put(h.root, types.SettingNameFargateTaskRetirementWaitPeriod, "3", ""), ecs.CodeInvalidParameter, []string{"value"}},
		{"wait period for a role", put(h.root, types.SettingNameFargateTaskRetirementWaitPeriod, "14", settingsRole), ecs.CodeInvalidParameter, []string{"root"}},
		{"log driver mode", put(h.root, types.SettingNameDefaultLogDriverMode, "enabled", ""), ecs.CodeInvalidParameter, []string{"value"}},
		{"tag authorization", put(h.root, types.SettingNameTagResourceAuthorization, "enabled", ""), ecs.CodeInvalidParameter, []string{"value"}},
		{"guardDutyActivate is AWS's", put(h.root, types.SettingNameGuardDutyActivate, "on", ""), ecs.CodeInvalidParameter, []string{"guardDutyActivate"}},
		{"guardDutyActivate default", func() error {
			_, err := h.root.PutAccountSettingDefault(ctx, &awsecs.PutAccountSettingDefaultInput{Name: types.SettingNameGuardDutyActivate, Value: aws.String("off")})
			return err
		}(), ecs.CodeInvalidParameter, []string{"guardDutyActivate"}},
		{"guardDutyActivate delete", func() error {
			_, err := h.root.DeleteAccountSetting(ctx, &awsecs.DeleteAccountSettingInput{Name: types.SettingNameGuardDutyActivate})
			return err
		}(), ecs.CodeInvalidParameter, []string{"guardDutyActivate"}},
		{"principal not IAM", put(h.root, types.SettingNameAwsvpcTrunking, "enabled", "arn:aws:ecs:us-east-1:123456789012:cluster/x"), ecs.CodeInvalidParameter, []string{"principalArn"}},
		{"principal garbage", put(h.root, types.SettingNameAwsvpcTrunking, "enabled", "deployer"), ecs.CodeInvalidParameter, []string{"principalArn"}},
		{"principal of another account", put(h.root, types.SettingNameAwsvpcTrunking, "enabled", "arn:aws:iam::210987654321:role/x"), ecs.CodeInvalidParameter, []string{"principalArn", "210987654321"}},
		{"role acting for another", put(h.role, types.SettingNameAwsvpcTrunking, "enabled", settingsUser), ecs.CodeAccessDenied, []string{"principalArn"}},
		{"role acting for root", put(h.role, types.SettingNameAwsvpcTrunking, "enabled", settingsRoot), ecs.CodeAccessDenied, []string{"principalArn"}},
		{"role listing another", func() error {
			_, err := h.role.ListAccountSettings(ctx, &awsecs.ListAccountSettingsInput{PrincipalArn: aws.String(settingsUser)})
			return err
		}(), ecs.CodeAccessDenied, []string{"principalArn"}},
		{"value filter without name", func() error {
			_, err := h.root.ListAccountSettings(ctx, &awsecs.ListAccountSettingsInput{Value: aws.String("enabled")})
			return err
		}(), ecs.CodeInvalidParameter, []string{"value", "name"}},
		{"maxResults too big", func() error {
			_, err := h.root.ListAccountSettings(ctx, &awsecs.ListAccountSettingsInput{MaxResults: 11})
			return err
		}(), ecs.CodeInvalidParameter, []string{"maxResults"}},
		{"maxResults negative", func() error {
			_, err := h.root.ListAccountSettings(ctx, &awsecs.ListAccountSettingsInput{MaxResults: -1})
			return err
		}(), ecs.CodeInvalidParameter, []string{"maxResults"}},
		{"bad nextToken", func() error {
			_, err := h.root.ListAccountSettings(ctx, &awsecs.ListAccountSettingsInput{NextToken: aws.String("!!")})
			return err
		}(), ecs.CodeInvalidParameter, []string{"nextToken"}},
		{"list unknown name", func() error {
			_, err := h.root.ListAccountSettings(ctx, &awsecs.ListAccountSettingsInput{Name: "nope"})
			return err
		}(), ecs.CodeInvalidParameter, []string{"name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { settingsWant(t, tc.err, tc.code, tc.parts...) })
	}
	// A role may name itself explicitly.
	if err := put(h.role, types.SettingNameAwsvpcTrunking, "enabled", settingsRole); err != nil {
		t.Fatal(err)
	}
	// Nothing refused was stored.
	if v := settingsAll(t, h.root, awsecs.ListAccountSettingsInput{}); len(v) != 0 {
		t.Fatalf("refused requests stored settings: %v", v)
	}
	for _, v := range []string{"enabled", "disabled", "enhanced"} {
		if err := put(h.root, types.SettingNameContainerInsights, v, ""); err != nil {
			t.Fatalf("containerInsights=%s: %v", v, err)
		}
	}
	for _, v := range []string{"blocking", "non-blocking"} {
		if err := put(h.root, types.SettingNameDefaultLogDriverMode, v, ""); err != nil {
			t.Fatalf("defaultLogDriverMode=%s: %v", v, err)
		}
	}
	for _, v := range []string{"0", "7", "14"} {
		if err := put(h.root, types.SettingNameFargateTaskRetirementWaitPeriod, v, ""); err != nil {
			t.Fatalf("fargateTaskRetirementWaitPeriod=%s: %v", v, err)
		}
	}
}
