#!/usr/bin/env bash
# The task definition lifecycle with the real aws CLI (v1) against ecsd.
# Run by TestCLITaskDefinitions (cli_test.go), or by hand against a running ecsd:
#
#   ENDPOINT=http://127.0.0.1:8080 ACCOUNT=000000000000 bash test/e2e/cli_taskdef.sh
#
# ACCOUNT is the account the credentials act for (ARNs are checked against it).
# Every step checks its output; the first mismatch stops the script non-zero.
set -euo pipefail
cd "$(dirname "$0")" # file://testdata/... is relative to this directory

: "${ENDPOINT:?set ENDPOINT to the ecsd API URL}"
: "${ACCOUNT:?set ACCOUNT to the 12-digit account the credentials act for}"
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
# Keep the CLI away from the user's files and any metadata service.
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=''

REGION=us-east-1
CLUSTER=e2e-cli
FAMILY=e2e-web # as in testdata/taskdef.json
CLUSTER_ARN="arn:aws:ecs:$REGION:$ACCOUNT:cluster/$CLUSTER"
TD_ARN="arn:aws:ecs:$REGION:$ACCOUNT:task-definition/$FAMILY"
TAB=$'\t'
NL=$'\n'
checks=0

ecs() { aws ecs "$@" --endpoint-url "$ENDPOINT" --region "$REGION"; }
step() { printf '\n== %s\n' "$*"; }
fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}
# expect WHAT WANT GOT
expect() {
	if [ "$2" != "$3" ]; then
		fail "$1:${NL}  want: $(printf '%q' "$2")${NL}  got:  $(printf '%q' "$3")"
	fi
	checks=$((checks + 1))
	printf 'ok: %s = %s\n' "$1" "${3//$NL/ | }"
}
# expect_error WHAT CODE_REGEX COMMAND...: the command must fail and name the code on stderr.
expect_error() {
	local what=$1 code=$2 err
	shift 2
	if err=$("$@" 2>&1 >/dev/null); then
		fail "$what: the call succeeded; want an error matching $code"
	fi
	grep -Eq "$code" <<<"$err" || fail "$what: want an error matching $code, got: $err"
	checks=$((checks + 1))
	printf 'ok: %s rejected: %s\n' "$what" "$(grep -Eo "\\(($code)\\).*" <<<"$err" | head -n1)"
}

step "create-cluster"
expect "cluster name, status, ARN" "$CLUSTER${TAB}ACTIVE${TAB}$CLUSTER_ARN" \
	"$(ecs create-cluster --cluster-name "$CLUSTER" \
		--query '[cluster.clusterName, cluster.status, cluster.clusterArn]' --output text)"

step "register-task-definition (revision 1)"
expect "ARN, revision, status" "$TD_ARN:1${TAB}1${TAB}ACTIVE" \
	"$(ecs register-task-definition --cli-input-json file://testdata/taskdef.json \
		--query '[taskDefinition.taskDefinitionArn, taskDefinition.revision, taskDefinition.status]' --output text)"

step "describe-task-definition $FAMILY:1 --include TAGS"
expect "healthCheck command, retries" "CMD-SHELL${TAB}wget -q -O /dev/null http://localhost:8080/ || exit 1${TAB}3" \
	"$(ecs describe-task-definition --task-definition "$FAMILY:1" \
		--query 'taskDefinition.containerDefinitions[0].[healthCheck.command[0], healthCheck.command[1], healthCheck.retries]' --output text)"
expect "portMappings" "8080${TAB}0${TAB}tcp" \
	"$(ecs describe-task-definition --task-definition "$FAMILY:1" \
		--query 'taskDefinition.containerDefinitions[0].portMappings[0].[containerPort, hostPort, protocol]' --output text)"
expect "environment GREETING" "hello" \
	"$(ecs describe-task-definition --task-definition "$FAMILY:1" \
		--query "taskDefinition.containerDefinitions[0].environment[?name=='GREETING'].value | [0]" --output text)"
expect "cpu, memory, networkMode, EC2 compatible, registeredBy" \
	"256${TAB}512${TAB}bridge${TAB}True${TAB}arn:aws:iam::$ACCOUNT:root" \
	"$(ecs describe-task-definition --task-definition "$FAMILY:1" \
		--query "taskDefinition.[cpu, memory, networkMode, contains(compatibilities, 'EC2'), registeredBy]" --output text)"
expect "tags" "team${TAB}platform" \
	"$(ecs describe-task-definition --task-definition "$FAMILY:1" --include TAGS \
		--query 'tags[].[key, value]' --output text)"

step "register-task-definition again (revision 2)"
expect "ARN, revision" "$TD_ARN:2${TAB}2" \
	"$(ecs register-task-definition --cli-input-json file://testdata/taskdef.json \
		--query '[taskDefinition.taskDefinitionArn, taskDefinition.revision]' --output text)"
expect "describe by family gives the latest" "2" \
	"$(ecs describe-task-definition --task-definition "$FAMILY" --query 'taskDefinition.revision' --output text)"

step "a second family whose name starts with the first"
expect "canary revision" "1" \
	"$(ecs register-task-definition --family "$FAMILY-canary" \
		--container-definitions '[{"name":"app","image":"busybox","essential":true,"memory":64}]' \
		--query 'taskDefinition.revision' --output text)"

step "list-task-definitions --family-prefix $FAMILY"
# familyPrefix of ListTaskDefinitions is the full family name: the canary is not listed.
expect "task definition ARNs" "$TD_ARN:1${TAB}$TD_ARN:2" \
	"$(ecs list-task-definitions --family-prefix "$FAMILY" --query taskDefinitionArns --output text)"
expect "newest first with --sort DESC" "$TD_ARN:2${TAB}$TD_ARN:1" \
	"$(ecs list-task-definitions --family-prefix "$FAMILY" --sort DESC --query taskDefinitionArns --output text)"
expect "families with the prefix" "$FAMILY${TAB}$FAMILY-canary" \
	"$(ecs list-task-definition-families --family-prefix "$FAMILY" --query families --output text)"

step "deregister every revision through xargs"
expect "deregistered statuses" "INACTIVE${NL}INACTIVE" \
	"$(ecs list-task-definitions --family-prefix "$FAMILY" --query taskDefinitionArns --output text |
		tr '\t' '\n' |
		xargs -n1 aws ecs deregister-task-definition --endpoint-url "$ENDPOINT" --region "$REGION" \
			--query taskDefinition.status --output text --task-definition)"
expect "ACTIVE revisions left" "" \
	"$(ecs list-task-definitions --family-prefix "$FAMILY" --status ACTIVE --query taskDefinitionArns --output text)"
expect "INACTIVE revisions" "$TD_ARN:1${TAB}$TD_ARN:2" \
	"$(ecs list-task-definitions --family-prefix "$FAMILY" --status INACTIVE --query taskDefinitionArns --output text)"
expect "revision 1 is describable and INACTIVE" "INACTIVE" \
	"$(ecs describe-task-definition --task-definition "$FAMILY:1" --query 'taskDefinition.status' --output text)"
expect "families without an ACTIVE revision" "$FAMILY" \
	"$(ecs list-task-definition-families --family-prefix "$FAMILY" --status INACTIVE --query families --output text)"
expect "families with an ACTIVE revision" "$FAMILY-canary" \
	"$(ecs list-task-definition-families --family-prefix "$FAMILY" --status ACTIVE --query families --output text)"

step "delete-task-definitions"
expect "statuses, failures" "DELETE_IN_PROGRESS,DELETE_IN_PROGRESS${TAB}0" \
	"$(ecs delete-task-definitions --task-definitions "$TD_ARN:1" "$TD_ARN:2" \
		--query "[join(',', taskDefinitions[].status), length(failures || \`[]\`)]" --output text)"

step "revision numbers are never reused"
expect "next revision after deleting 1 and 2" "3" \
	"$(ecs register-task-definition --cli-input-json file://testdata/taskdef.json \
		--query 'taskDefinition.revision' --output text)"

step "tags on the cluster"
ecs tag-resource --resource-arn "$CLUSTER_ARN" --tags key=team,value=platform key=env,value=e2e
expect "tags after tag-resource" "env${TAB}e2e${NL}team${TAB}platform" \
	"$(ecs list-tags-for-resource --resource-arn "$CLUSTER_ARN" --query 'sort_by(tags, &key)[].[key, value]' --output text)"
ecs untag-resource --resource-arn "$CLUSTER_ARN" --tag-keys env
expect "tags after untag-resource" "team${TAB}platform" \
	"$(ecs list-tags-for-resource --resource-arn "$CLUSTER_ARN" --query 'tags[].[key, value]' --output text)"
expect "describe-clusters --include TAGS" "team${TAB}platform" \
	"$(ecs describe-clusters --clusters "$CLUSTER" --include TAGS --query 'clusters[0].tags[].[key, value]' --output text)"
expect_error "a tag key with the reserved aws: prefix" 'InvalidParameterException|ClientException' \
	ecs tag-resource --resource-arn "$CLUSTER_ARN" --tags key=aws:owner,value=me

step "Fargate task sizes"
expect_error "FARGATE with cpu 256 and memory 4096" 'ClientException' \
	ecs register-task-definition --family e2e-fargate-bad --requires-compatibilities FARGATE \
	--network-mode awsvpc --cpu 256 --memory 4096 \
	--container-definitions '[{"name":"app","image":"busybox","essential":true}]'
expect "nothing stored for the rejected family" "" \
	"$(ecs list-task-definition-families --family-prefix e2e-fargate-bad --query families --output text)"
expect "FARGATE with cpu '1 vCPU' and memory '2 GB': normalised, FARGATE compatible" \
	"1024${TAB}2048${TAB}True" \
	"$(ecs register-task-definition --family e2e-fargate-ok --requires-compatibilities FARGATE \
		--network-mode awsvpc --cpu '1 vCPU' --memory '2 GB' \
		--container-definitions '[{"name":"app","image":"busybox","essential":true}]' \
		--query "taskDefinition.[cpu, memory, contains(compatibilities, 'FARGATE')]" --output text)"

step "delete-cluster"
expect "status after delete-cluster" "INACTIVE" \
	"$(ecs delete-cluster --cluster "$CLUSTER" --query 'cluster.status' --output text)"
expect "describe-clusters of the deleted cluster" "INACTIVE" \
	"$(ecs describe-clusters --clusters "$CLUSTER" --query 'clusters[0].status' --output text)"
expect "describe-clusters of a cluster that never existed" "MISSING" \
	"$(ecs describe-clusters --clusters e2e-never --query 'failures[0].reason' --output text)"

printf '\ncli_taskdef: all %d checks passed\n' "$checks"
