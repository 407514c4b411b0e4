package cql

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func t2small() *Object {
	return &Object{
		Attributes: map[string]string{
			"ecs.instance-type":     "t2.small",
			"ecs.availability-zone": "us-east-1a",
			"ecs.os-type":           "linux",
			"stack":                 "prod",
			"gpu":                   "",
			"rank":                  "10",
			"release":               "1.10.2",
		},
		Connected:    true,
		Version:      "1.14.5",
		EC2ID:        "i-abcd1234",
		Registered:   time.Date(2018, 6, 18, 22, 28, 28, 0, time.UTC),
		RunningTasks: 1,
		TaskGroups:   []string{"service:production", "family:web"},
	}
}

func empty() *Object {
	return &Object{Attributes: map[string]string{"ecs.instance-type": "g2.2xlarge", "ecs.availability-zone": "us-east-1d"}}
}

func TestEval(t *testing.T) {
	cases := []struct {
		expr         string
		small, empty bool
	}{
		// The examples ECS documents.
		{"attribute:ecs.instance-type == t2.small", true, false},
		{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", true, false},
		{"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", false, false},
		{"attribute:ecs.instance-type =~ g2.*", false, true},
		{"task:group == service:production", true, false},
		{"not(task:group == database)", true, true},
		{"runningTasksCount == 1", true, false},
		{"agentVersion < 1.14.5", false, false},
		{"agentVersion < 1.15", true, false},
		{"registeredAt < 2018-02-13", false, false},
		{"registeredAt > 2018-02-13", true, false},
		{"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", true, false},
		{"attribute:ecs.instance-type matches t2.*", true, false},
		{"attribute:stack != prod", false, false}, // absent attribute: != is false
		{"attribute:stack == prod", true, false},
		// Word and symbol spellings.
		{"attribute:stack equals prod", true, false},
		{"attribute:stack not_equals dev", true, false},
		{"attribute:stack exists", true, false},
		{"attribute:stack !exists", false, true},
		{"attribute:stack not_exists", false, true},
		{"attribute:gpu exists", true, false}, // valueless attribute
		{"attribute:gpu == ''", true, false},
		{"attribute:ecs.availability-zone !in [us-east-1d]", true, false},
		{"attribute:ecs.availability-zone not_in [us-east-1d]", true, false},
		{"attribute:ecs.instance-type !~ t2.*", false, true},
		{"attribute:ecs.instance-type not_matches 't2\\..*'", false, true},
		{"attribute:rank > 9", true, false}, // numeric, not string, order
		{"attribute:rank greater_than_equal 10", true, false},
		{"attribute:rank less_than 10", false, false},
		{"attribute:release > 1.9.9", true, false}, // versions
		{"attribute:release <= 1.10.2", true, false},
		// Patterns match the whole value, Java-style.
		{"attribute:ecs.instance-type =~ t2", false, false},
		{"attribute:ecs.instance-type =~ (t2|m5)\\..*", true, false},
		{"attribute:ecs.instance-type =~ [tg]2\\..+", true, true},
		{"(attribute:ecs.instance-type =~ t2.*)", true, false},
		{"not(task:group =~ (service:.*))", false, true},
		// Booleans, precedence and grouping.
		{"attribute:stack == prod or attribute:ecs.instance-type == g2.2xlarge", true, true},
		{"attribute:stack == prod || attribute:ecs.instance-type == g2.2xlarge && attribute:stack == x", true, false},
		{"(attribute:stack == prod || attribute:ecs.instance-type == g2.2xlarge) && attribute:stack == prod", true, false},
		{"!attribute:stack exists", false, true},
		{"not not attribute:stack exists", true, false},
		{"attribute:stack == prod AND agentConnected == true", true, false},
		{"agentConnected == false", false, true},
		{"agentConnected in [true]", true, false},
		{"agentConnected =~ t.*", true, false},
		// task:group as a set.
		{"task:group exists", true, false},
		{"task:group !exists", false, true},
		{"task:group != database", true, true},
		{"task:group != family:web", false, true},
		{"task:group in [database, family:web]", true, false},
		{"task:group not_in [database]", true, true},
		{"task:group =~ family:.*", true, false},
		{"task:group !~ family:.*", false, true},
		// Dates at day and second precision.
		{"registeredAt == 2018-06-18", true, false},
		{"registeredAt >= 2018-06-18T22:28:28Z", true, false},
		{"registeredAt > 2018-06-18T22:28:28+00:00", false, false},
		{"registeredAt < 2018-06-18T22:28:29", true, false},
		{"runningTasksCount <= 0", false, true},
		{"runningTasksCount != 0", true, false},
		{"ec2InstanceId =~ i-.*", true, false},
		{"ec2InstanceId != i-abcd1234", false, true},
		// No spaces around symbols; quoted values with spaces.
		{"attribute:stack==prod&&runningTasksCount>0", true, false},
		{"attribute:ecs.instance-type=~t2.*&&attribute:stack exists", true, false},
		{"attribute:ecs.instance-type=~g2.*||attribute:stack exists", true, true},
		{`attribute:stack in ["prod", 'dev ops']`, true, false},
		{"attribute:and == and", false, false},
	}
	for _, c := range cases {
		e, err := Parse(c.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.expr, err)
			continue
		}
		if got := e.Eval(t2small()); got != c.small {
			t.Errorf("%q on t2.small = %v, want %v", c.expr, got, c.small)
		}
		if got := e.Eval(empty()); got != c.empty {
			t.Errorf("%q on the empty g2 = %v, want %v", c.expr, got, c.empty)
		}
		if e.String() != c.expr {
			t.Errorf("String() = %q", e.String())
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		expr string
		pos  int // 1-based, as in the message
		msg  string
	}{
		{"", 1, "empty expression"},
		{"attribute:ecs.instance-type", 28, "expected an operator after attribute:ecs.instance-type"},
		{"attribute:ecs.instance-type t2.small", 29, "expected an operator after attribute:ecs.instance-type, found 't2.small'"},
		{"attribute:ecs.instance-type ==", 31, "expected a value after attribute:ecs.instance-type =="},
		{"attribute: == x", 11, "expected an attribute name"},
		{"attribute:a$b == x", 12, "attribute names may contain"},
		{"Attribute:x == y", 1, "write attribute: in lowercase"},
		{"agentconnected == true", 1, "did you mean agentConnected"},
		{"instanceType == t2", 1, "unknown subject 'instanceType'"},
		{"agentConnected > true", 16, "operator > is not valid for agentConnected"},
		{"agentConnected == yes", 19, "agentConnected is true or false"},
		{"runningTasksCount > many", 21, "whole numbers"},
		{"agentVersion < latest", 16, "versions such as 1.14.5"},
		{"registeredAt < yesterday", 16, "registeredAt compares dates"},
		{"attribute:x in a", 16, "expected a list such as [a, b]"},
		{"attribute:x in [a, b", 16, "unbalanced '['"},
		{"attribute:x in [a b]", 19, "expected ',' or ']'"},
		{"attribute:x in []", 17, "expected a value after attribute:x in a list"},
		{"attribute:x not in [a]", 13, "write not_in (or !in)"},
		{"attribute:x =~ [a", 16, "invalid pattern"},
		{"attribute:x =~ a(?=b)", 16, "invalid pattern"},
		{"attribute:x =~", 15, "expected a pattern"},
		{"(attribute:x exists", 1, "unbalanced '('"},
		{"attribute:x exists)", 19, "unbalanced ')'"},
		{"attribute:x exists attribute:y exists", 20, "expected and, or or the end"},
		{"attribute:x exists and", 23, "expected a subject"},
		{"attribute:x == 'abc", 16, "unterminated string"},
		{"attribute:x = y", 13, "unexpected \"=\""},
		{"attribute:x ! y", 13, "expected !exists or !in"},
		{strings.Repeat("(", 100) + "attribute:x exists" + strings.Repeat(")", 100), 65, "nested more than 64"},
	}
	for _, c := range cases {
		_, err := Parse(c.expr)
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) = %v, want a *cql.Error", c.expr, err)
			continue
		}
		if pe.Pos+1 != c.pos || !strings.Contains(pe.Msg, c.msg) {
			t.Errorf("Parse(%q) = %q, want position %d and %q", c.expr, err, c.pos, c.msg)
		}
		if !strings.HasPrefix(err.Error(), "at position ") {
			t.Errorf("message %q does not start with the position", err)
		}
	}
}

func TestMeta(t *testing.T) {
	e, err := Parse("attribute:a == 1 and (attribute:b exists or attribute:a != 2)")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.Attributes(), ","); got != "a,b" || e.UsesTaskGroup() {
		t.Fatalf("Attributes() = %q, UsesTaskGroup() = %v", got, e.UsesTaskGroup())
	}
	e, _ = Parse("not(task:group == x)")
	if !e.UsesTaskGroup() {
		t.Fatal("UsesTaskGroup() = false")
	}
}

func TestEvalAllocs(t *testing.T) {
	e, _ := Parse("attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and task:group != x")
	o := t2small()
	if n := testing.AllocsPerRun(100, func() { e.Eval(o) }); n != 0 {
		t.Fatalf("Eval allocates %v times", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"attribute:ecs.instance-type == t2.small",
		"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
		"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
		"not(task:group == database)",
		"registeredAt < 2018-02-13",
		"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']",
		"(a == b) || !(c exists)",
		"attribute:x =~ ((a|b)))",
		"agentVersion >= 1.2.3 && runningTasksCount != 0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) returned %T", s, err)
			}
			if pe.Pos < 0 || pe.Pos > len(s) {
				t.Fatalf("Parse(%q): position %d outside the input", s, pe.Pos)
			}
			return
		}
		e.Eval(t2small())
		e.Eval(empty())
		e.Eval(&Object{})
	})
}
