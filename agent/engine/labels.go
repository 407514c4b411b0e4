package engine

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
)

// Docker labels on every container the engine creates. The com.amazonaws.ecs
// ones are those the ECS agent sets; the ecsd ones carry what a restarted
// agent needs to re-attach to its containers without any other state.
const (
	LabelTaskARN     = "com.amazonaws.ecs.task-arn"
	LabelContainer   = "com.amazonaws.ecs.container-name"
	LabelFamily      = "com.amazonaws.ecs.task-definition-family"
	LabelRevision    = "com.amazonaws.ecs.task-definition-version"
	LabelCluster     = "com.amazonaws.ecs.cluster"
	LabelManaged     = runtime.LabelManaged // "true"
	LabelInstance    = "ecsd.instance"      // the container instance ARN
	labelKind        = "ecsd.kind"          // kindContainer or kindPause
	labelToken       = "ecsd.metadata-token"
	labelEssential   = "ecsd.essential"
	labelStopTimeout = "ecsd.stop-timeout" // seconds
	labelPauseID     = "ecsd.pause-id"     // awsvpc: the task's pause container
	labelAttachment  = "ecsd.attachment-id"
	labelPool        = "ecsd.pause-pool" // a pause container not yet given to a task
)

const (
	kindContainer = "container"
	kindPause     = "pause"
)

// hiddenLabels are not shown by the metadata endpoint: the token of one
// container must not be readable by its neighbours.
var hiddenLabels = map[string]bool{labelToken: true}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newToken is a metadata endpoint token: like ECS's, 32 hex digits, a dash and
// a number.
func newToken() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	n := uint32(b[16])<<24 | uint32(b[17])<<16 | uint32(b[18])<<8 | uint32(b[19])
	return hex.EncodeToString(b[:16]) + "-" + strconv.FormatUint(uint64(n), 10)
}

// dockerName is the ECS agent's container naming: ecs-<family>-<revision>-
// <name with only letters, digits and dashes>-<random hex>.
func dockerName(family string, revision int32, name string) string {
	var b strings.Builder
	for _, r := range name {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' {
			b.WriteRune(r)
		}
	}
	return "ecs-" + family + "-" + strconv.Itoa(int(revision)) + "-" + b.String() + "-" + randHex(10)
}

// taskID is the last part of a task ARN.
func taskID(arn string) string {
	if i := strings.LastIndexByte(arn, '/'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

// clusterName is the cluster name in a cluster ARN (or the name itself).
func clusterName(arn string) string {
	if i := strings.LastIndexByte(arn, '/'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func secondsLabel(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}

func parseSecondsLabel(s string, def time.Duration) time.Duration {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return def
	}
	return time.Duration(n) * time.Second
}

// newUUID is a random (version 4) UUID, the form of ECS attachment ids.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
