package apiserver

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
)

// Validation and normalisation of what a container instance registers with:
// resources, attributes and the instance identity document.

// Resource names and types ECS uses for container instances.
const (
	ciResCPU      = "CPU"
	ciResMemory   = "MEMORY"
	ciResPorts    = "PORTS"
	ciResPortsUDP = "PORTS_UDP"

	ciTypeInteger   = "INTEGER"
	ciTypeLong      = "LONG"
	ciTypeDouble    = "DOUBLE"
	ciTypeStringSet = "STRINGSET"
)

// ECS's defaults for an instance registered without totalResources: 4 vCPU,
// 7482 MiB and the ports the ECS agent and Docker reserve on every instance.
var (
	ciDefaultCPU    int32 = 4096
	ciDefaultMemory int32 = 7482
	ciDefaultPorts        = []string{"22", "2375", "2376", "51678", "51679"}
)

// Attribute rules: names of 1–128 letters, digits, '-', '_', '/', '\' and '.';
// values of 1–128 characters from a wider set, not starting or ending with a
// space. At most 10 custom (non-ECS) attributes per instance.
var (
	ciAttrNameRE  = regexp.MustCompile(`^[a-zA-Z0-9_\-/\\.]{1,128}$`)
	ciAttrValueRE = regexp.MustCompile(`^[a-zA-Z0-9_\-.@/\\: ]{1,128}$`)
)

const ciMaxCustomAttributes = 10

// ciIsECSAttribute reports whether name is one ECS or its agent sets (those do
// not count toward the custom attribute limit).
func ciIsECSAttribute(name string) bool {
	return strings.HasPrefix(name, "ecs.") || strings.HasPrefix(name, "com.amazonaws.ecs.")
}

// ciNormaliseResources validates totalResources and fills in ECS's default for
// each of CPU, MEMORY, PORTS and PORTS_UDP the caller left out (all of them when
// nothing was sent). Every resource comes back with its type and value fields
// set the way ECS reports them.
func ciNormaliseResources(in []ecs.Resource) ([]ecs.Resource, error) {
	out := make([]ecs.Resource, 0, len(in)+4)
	seen := map[string]bool{}
	for i, r := range in {
		p := fmt.Sprintf("totalResources[%d]", i)
		if r.Name == "" {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.name is required (CPU, MEMORY, PORTS, PORTS_UDP, ...).", p)
		}
		if seen[r.Name] {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.name: resource %s is given twice.", p, r.Name)
		}
		seen[r.Name] = true
		typ := r.Type
		if typ == "" {
			typ = ciDefaultResourceType(r)
		}
		switch r.Name {
		case ciResCPU, ciResMemory:
			if typ != ciTypeInteger {
				return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.type: %s must be of type INTEGER; got %q.", p, r.Name, typ)
			}
			if r.IntegerValue < 0 {
				return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.integerValue: %s must not be negative; got %d.", p, r.Name, r.IntegerValue)
			}
		case ciResPorts, ciResPortsUDP:
			if typ != ciTypeStringSet {
				return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.type: %s must be of type STRINGSET; got %q.", p, r.Name, typ)
			}
			for j, v := range r.StringSetValue {
				if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 65535 {
					return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.stringSetValue[%d]: %q is not a port number (0-65535).", p, j, v)
				}
			}
		default:
			switch typ {
			case ciTypeInteger, ciTypeLong, ciTypeDouble, ciTypeStringSet:
			default:
				return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.type: %q is not valid; valid types are INTEGER, LONG, DOUBLE and STRINGSET.", p, typ)
			}
		}
		r.Type = typ
		out = append(out, ciWireResource(r))
	}
	if !seen[ciResCPU] {
		out = append(out, ciIntResource(ciResCPU, ciDefaultCPU))
	}
	if !seen[ciResMemory] {
		out = append(out, ciIntResource(ciResMemory, ciDefaultMemory))
	}
	if !seen[ciResPorts] {
		out = append(out, ciSetResource(ciResPorts, slices.Clone(ciDefaultPorts)))
	}
	if !seen[ciResPortsUDP] {
		out = append(out, ciSetResource(ciResPortsUDP, []string{}))
	}
	return out, nil
}

func ciDefaultResourceType(r ecs.Resource) string {
	switch {
	case r.Name == ciResPorts || r.Name == ciResPortsUDP || r.StringSetValue != nil:
		return ciTypeStringSet
	case r.LongValue != 0:
		return ciTypeLong
	case r.DoubleValue != 0:
		return ciTypeDouble
	}
	return ciTypeInteger
}

// ciWireResource keeps only the value field that matches the type (ECS reports
// the other numeric fields as 0 and the string set only for STRINGSET).
func ciWireResource(r ecs.Resource) ecs.Resource {
	out := ecs.Resource{Name: r.Name, Type: r.Type}
	switch r.Type {
	case ciTypeInteger:
		out.IntegerValue = r.IntegerValue
	case ciTypeLong:
		out.LongValue = r.LongValue
	case ciTypeDouble:
		out.DoubleValue = r.DoubleValue
	case ciTypeStringSet:
		out.StringSetValue = wireList(slices.Clone(r.StringSetValue))
	}
	return out
}

func ciIntResource(name string, v int32) ecs.Resource {
	return ecs.Resource{Name: name, Type: ciTypeInteger, IntegerValue: v}
}

func ciSetResource(name string, v []string) ecs.Resource {
	return ecs.Resource{Name: name, Type: ciTypeStringSet, StringSetValue: wireList(v)}
}

// ciValidateAttributes checks names and values and the custom attribute limit.
// It returns the attributes with only name and value (targets are implied on
// an instance's own attributes); a later duplicate name replaces an earlier one.
func ciValidateAttributes(path string, in []ecs.Attribute) ([]ecs.Attribute, error) {
	out := make([]ecs.Attribute, 0, len(in))
	for i, a := range in {
		p := fmt.Sprintf("%s[%d]", path, i)
		if !ciAttrNameRE.MatchString(a.Name) {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.name: %q is not valid: 1-128 letters, numbers, hyphens, underscores, periods and forward or back slashes.", p, a.Name)
		}
		if a.Value != "" && (!ciAttrValueRE.MatchString(a.Value) || strings.HasPrefix(a.Value, " ") || strings.HasSuffix(a.Value, " ")) {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.value: %q is not valid: 1-128 letters, numbers, spaces, hyphens, underscores, periods, at signs, colons and forward or back slashes, not starting or ending with a space.", p, a.Value)
		}
		out = ciSetAttribute(out, a.Name, a.Value)
	}
	custom := 0
	for _, a := range out {
		if !ciIsECSAttribute(a.Name) {
			custom++
		}
	}
	if custom > ciMaxCustomAttributes {
		return nil, ecs.Errorf(ecs.CodeAttributeLimitExceeded, "%s: at most %d custom attributes are allowed on a container instance; got %d.", path, ciMaxCustomAttributes, custom)
	}
	return out, nil
}

// ciSetAttribute sets name to value, replacing an existing attribute of that name.
func ciSetAttribute(attrs []ecs.Attribute, name, value string) []ecs.Attribute {
	if i := slices.IndexFunc(attrs, func(a ecs.Attribute) bool { return a.Name == name }); i >= 0 {
		attrs[i].Value = value
		return attrs
	}
	return append(attrs, ecs.Attribute{Name: name, Value: value})
}

// ciDefaultAttribute sets name only when the instance does not carry it.
func ciDefaultAttribute(attrs []ecs.Attribute, name, value string) []ecs.Attribute {
	if value == "" || slices.ContainsFunc(attrs, func(a ecs.Attribute) bool { return a.Name == name }) {
		return attrs
	}
	return append(attrs, ecs.Attribute{Name: name, Value: value})
}

// ciIdentityDocument is the part of an EC2 instance identity document ecsd
// reads. Its signature is not checked: there is no cloud to check it against.
type ciIdentityDocument struct {
	InstanceID       string `json:"instanceId"`
	AvailabilityZone string `json:"availabilityZone"`
	InstanceType     string `json:"instanceType"`
	Region           string `json:"region"`
	ImageID          string `json:"imageId"`
	Architecture     string `json:"architecture"`
}

var ciInstanceIDRE = regexp.MustCompile(`^i-[0-9a-zA-Z]{1,32}$`)

func ciParseIdentityDocument(doc string) (ciIdentityDocument, error) {
	var d ciIdentityDocument
	if strings.TrimSpace(doc) == "" {
		return d, nil
	}
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return d, ecs.Errorf(ecs.CodeInvalidParameter, "instanceIdentityDocument: not a valid instance identity document (JSON with instanceId, availabilityZone, instanceType, region): %v.", err)
	}
	if d.InstanceID != "" && !ciInstanceIDRE.MatchString(d.InstanceID) {
		return d, ecs.Errorf(ecs.CodeInvalidParameter, "instanceIdentityDocument: instanceId %q is not an EC2 instance id (i-...).", d.InstanceID)
	}
	return d, nil
}

// ciArchitecture maps an identity document's architecture to the value of
// ecs.cpu-architecture.
func ciArchitecture(a string) string {
	switch a {
	case "", "x86_64", "amd64":
		return "x86_64"
	case "arm64", "aarch64":
		return "arm64"
	}
	return a
}
